"""Students, teachers and parents as Locust user classes, the CLOSED model (each user logs in again only once
its previous session is over: coordinated omission; for the surge itself use `schoolsurge run` or
locustfiles/surge.py):
`locust -f locustfiles/personas.py -u 30 -r 5 -H http://127.0.0.1:8080 [--scenario S] [Student Teacher Parent]`
(add --headless, --class-picker, --tags, a LoadTestShape of your own, or run a master and workers as usual)."""

# The locustfile first: its options, and its init listener (which installs the engine) before the persona users'.
import schoolsurge.locustfile  # noqa: F401
from schoolsurge.engine.persona_users import Parent, Student, Teacher

__all__ = ["Parent", "Student", "Teacher"]
