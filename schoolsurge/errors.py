"""Every error the suite raises on purpose, in one tree, so the CLI and the locustfile catch one type.

    SchoolsurgeError                 the message is one line: what is wrong and what to do
    ├── UsageError                   bad input, refused before anything starts (exit 2)
    │   ├── ScenarioError            a scenario file: unreadable, invalid YAML, a wrong field
    │   ├── ParameterError           a run option: scale, speed, seed, late/drop limits
    │   ├── SpecError                a run spec file (--run-spec) that cannot be used
    │   ├── AccountsError            an accounts CSV file
    │   ├── ClientError              --client / client options that cannot be used
    │   ├── UnsafeTargetError        a target that is not loopback and not explicitly allowed
    │   ├── RunTooLargeError         a run the plan says this machine cannot hold
    │   ├── ReportError              a run directory that cannot be reported on
    │   │   └── ManifestError        its manifest.json has a wrong field (the message names it)
    │   └── FitError                 a table a capacity model cannot be fitted to (too few points, bad values)
    ├── RunError                     the run could not proceed (exit 1)
    │   └── PlatformStartError       the embedded platform did not start
    ├── StepFailed                   one step of a person's session failed on the platform; already recorded
    │                                in Locust's statistics, caught by the personas (never reaches a user)
    └── StepNotSupported             a platform client does not offer an optional step; the persona skips it

Usage errors are also ValueErrors, as a wrong value is what they are.
"""

from __future__ import annotations


class SchoolsurgeError(Exception):
    """Base of the suite's errors; the message is one line saying what is wrong and what to do."""


class UsageError(SchoolsurgeError, ValueError):
    """Bad input, refused before anything is created or started (exit status 2)."""


class ScenarioError(UsageError):
    """A scenario file that cannot be used; the message names file, field and expectation."""


class ParameterError(UsageError):
    """A run parameter (scale, speed, seed, lateness limits) out of its range."""


class SpecError(UsageError):
    """A run spec file (--run-spec, run_spec.json) that cannot be read or holds a wrong field; the message names
    the file and the field."""


class AccountsError(UsageError):
    """An accounts file that cannot be used; the message names the file and what to fix."""


class ClientError(UsageError):
    """A platform client that cannot be loaded or configured (--client, --client-option)."""


class UnsafeTargetError(UsageError):
    """The target is not on this machine and was not explicitly allowed."""


class RunTooLargeError(UsageError):
    """The plan says this machine cannot hold the run; the message says what to do instead."""


class ReportError(UsageError):
    """A run directory that cannot be reported on; the message says what is wrong and what to do."""


class ManifestError(ReportError):
    """A run's manifest.json with a field of the wrong type or value; the message names the file and the field."""


class FitError(UsageError):
    """Measurements a capacity model cannot be fitted to; the message says what is missing."""


class RunError(SchoolsurgeError, RuntimeError):
    """The run could not proceed (exit status 1)."""


class PlatformStartError(RunError):
    """The embedded platform process died or did not become ready in time."""


class StepFailed(SchoolsurgeError):
    """A step of a person's session failed on the platform (already recorded as a failed request)."""


class StepNotSupported(SchoolsurgeError, NotImplementedError):
    """A platform client does not offer this optional step; personas skip it and count it, not as an error."""
