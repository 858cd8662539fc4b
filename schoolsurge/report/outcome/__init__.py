"""What a run came to: its SLO verdicts, who got in, how far it stood from its plan, whether it can be trusted
(the generator's and the platform's health), and the verdicts as JUnit XML for CI."""
