"""Entry point of a worker process: `uvicorn schoolsurge.platform.worker:app --factory`.

The server hands its workers their configuration through one environment variable, since spawned processes
start from scratch; PROMETHEUS_MULTIPROC_DIR travels the same way, set before prometheus-client is imported.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from schoolsurge.platform.oidc_config import ProviderConfig
from schoolsurge.platform.services import ServiceRegistry
from schoolsurge.platform.settings import Settings

if TYPE_CHECKING:  # the server imports this module for WorkerConfig: its supervisor serves no request
    from fastapi import FastAPI

WORKER_ENV = "SCHOOLSURGE_WORKER_CONFIG"


@dataclass(frozen=True)
class WorkerConfig:
    db: Path
    settings: Settings
    capacity_file: Path
    admin_token_hash: str
    services: ServiceRegistry
    metrics_token_hash: str | None = None  # None: /metrics is open
    oidc_provider_file: Path | None = None  # the OpenID Provider's key and secrets (oidc_config.py), OIDC mode only

    def to_env(self) -> str:
        return json.dumps(
            {
                "db": str(self.db),
                "settings": self.settings.to_json(),
                "capacity_file": str(self.capacity_file),
                "admin_token_hash": self.admin_token_hash,
                "services": self.services.to_json(),
                "metrics_token_hash": self.metrics_token_hash,
                "oidc_provider_file": None if self.oidc_provider_file is None else str(self.oidc_provider_file),
            }
        )

    @classmethod
    def from_env(cls, text: str) -> WorkerConfig:
        data: dict[str, Any] = json.loads(text)
        return cls(
            Path(data["db"]),
            Settings.from_json(data["settings"]),
            Path(data["capacity_file"]),
            data["admin_token_hash"],
            ServiceRegistry.from_json(data["services"]),
            data["metrics_token_hash"],
            None if data["oidc_provider_file"] is None else Path(data["oidc_provider_file"]),
        )


def app() -> FastAPI:
    from schoolsurge.platform.app import create_app

    config = WorkerConfig.from_env(os.environ[WORKER_ENV])
    return create_app(
        config.db,
        config.settings,
        capacity_file=config.capacity_file,
        admin_token_hash=config.admin_token_hash,
        services=config.services,
        metrics_token_hash=config.metrics_token_hash,
        oidc_provider=None if config.oidc_provider_file is None else ProviderConfig.read(config.oidc_provider_file),
    )
