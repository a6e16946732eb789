"""The official Python client (symbiont-sdk, unmodified) against a live symbi API.

Environment: SYMBI_BASE (http://127.0.0.1:PORT), SYMBI_TOKEN, AGENT_ID (an agent created
from DSL by the Rust side). Exits non-zero (with a traceback) on the first failure.
"""
import os
import time

from symbiont import Client
from symbiont.schedules import CreateScheduleRequest

base = os.environ["SYMBI_BASE"] + "/api/v1"
token = os.environ["SYMBI_TOKEN"]
agent_id = os.environ["AGENT_ID"]

c = Client(api_key=token, base_url=base)

h = c.health_check()
assert h.status == "healthy", h

agents = c.list_agents()
assert any(a["id"] == agent_id for a in agents), agents

# The SDK's typed status model predates upstream's PascalCase state names and cannot parse
# any of them (API-CONTRACT §10); symbi keeps the upstream spelling. Read it untyped
# through the client's own request path (auth, base URL, error mapping).
st = c._request("GET", f"agents/{agent_id}/status").json()
assert st["agent_id"] == agent_id, st
assert st["state"] in ("Ready", "Waiting", "Running", "Completed"), st

m = c.get_metrics()
assert m.total_agents >= 1, m

s = c.get_status()
assert s.agent_count >= 1, s

r = c.execute_agent(agent_id)
assert r["status"] == "execution_started", r
again = c.execute_agent(agent_id, idempotency_key=str(__import__("uuid").uuid4()))
assert again["execution_id"] != r["execution_id"], (r, again)

sc = c.schedules
created = sc.create_schedule(CreateScheduleRequest(name="sdk-hourly", cron_expression="0 0 * * * *", agent_name="echo"))
job = created.job_id
assert any(j.job_id == job for j in sc.list_schedules())
d = sc.get_schedule(job)
assert d.status == "Active", d
assert sc.pause_schedule(job).status == "paused"
assert sc.resume_schedule(job).status == "active"
runs = sc.get_schedule_next_runs(job, count=3)
assert len(runs.next_runs) == 3, runs
health = sc.get_scheduler_health()
assert health.is_running
assert sc.delete_schedule(job).deleted

# A wrong token is an authentication error in the client.
bad = Client(api_key="wrong", base_url=base)
try:
    bad.list_agents()
except Exception as e:  # the client raises AuthenticationError on 401
    assert "Authentication" in type(e).__name__ or "401" in str(e), repr(e)
else:
    raise AssertionError("a wrong token was accepted")
print("sdk ok")
