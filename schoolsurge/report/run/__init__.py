"""The run report (report.html): its sections, in order, each computed from the loaded run and shown by a block of
template.html.j2 (build.py assembles them).

    facts.py            what ran, and its totals
    funnel.py           the login funnel: who was lost at each stage, and why
    tables.py           Locust's steps, failures and exceptions; the bots apart
    platform_section.py the platform's side and its CPU bound
    build.py            the sections assembled into report.html, beside capacity.json

The capacity answer (report/capacity/), the verdicts and health (report/outcome/) and the charts
(report/charts/) are sections too; what differs between kinds of runs the run's kind says (report/kinds.py).
"""
