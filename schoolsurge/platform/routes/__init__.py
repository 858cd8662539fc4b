"""The platform's routes, one module per journey; each exposes `router(platform) -> APIRouter`."""
