#!/usr/bin/env python3
"""Generates deploy/grafana/symbi-dashboard.json (Grafana 10+ dashboard JSON model).

Every query uses metrics that `GET /metrics` exposes; crates/symbi-api/tests tests that
each metric name used here appears in a live scrape. Run: python3 deploy/grafana/generate.py
"""
import json, os

DS = {"type": "prometheus", "uid": "${datasource}"}
panels = []
y = 0

def row(title):
    global y
    panels.append({"type": "row", "title": title, "collapsed": False, "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "id": len(panels) + 1, "panels": []})
    y += 1

def panel(title, exprs, x, w=8, h=8, unit="short", kind="timeseries", desc=""):
    targets = [{"datasource": DS, "expr": e, "legendFormat": l, "refId": chr(65 + i)} for i, (e, l) in enumerate(exprs)]
    panels.append({
        "type": kind, "title": title, "description": desc, "datasource": DS, "id": len(panels) + 1,
        "gridPos": {"h": h, "w": w, "x": x, "y": y}, "targets": targets,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}} if kind == "timeseries" else {},
    })

def next_line(h=8):
    global y
    y += h

row("Agents")
panel("Agents by state", [('sum by (state) (symbi_agents{instance=~"$instance"})', "{{state}}")], 0)
panel("Task completions / s", [('sum by (outcome) (rate(symbi_task_completions_total{instance=~"$instance"}[5m]))', "{{outcome}}")], 8)
panel("Errors by type / s", [
    ('sum by (class) (rate(symbi_task_failures_total{instance=~"$instance"}[5m]))', "task {{class}}"),
    ('sum by (kind) (rate(symbi_execution_errors_total{instance=~"$instance"}[5m]))', "execution {{kind}}"),
], 16)
next_line()
row("Scheduling")
panel("Scheduling decision latency", [
    ('histogram_quantile(0.5, sum by (le) (rate(symbi_scheduling_decision_seconds_bucket{instance=~"$instance"}[5m])))', "p50"),
    ('histogram_quantile(0.99, sum by (le) (rate(symbi_scheduling_decision_seconds_bucket{instance=~"$instance"}[5m])))', "p99"),
], 0, unit="s")
panel("Queue wait", [('histogram_quantile(0.99, sum by (le) (rate(symbi_queue_wait_seconds_bucket{instance=~"$instance"}[5m])))', "p99")], 8, unit="s")
panel("Tasks by scheduler state", [('sum by (state) (symbi_scheduler_tasks{instance=~"$instance"})', "{{state}}")], 16)
next_line()
row("Policy and security")
panel("Policy decisions / s by outcome", [('sum by (outcome) (rate(symbi_policy_decisions_total{instance=~"$instance"}[5m]))', "{{outcome}}")], 0)
panel("Action latency by category (p99)", [('histogram_quantile(0.99, sum by (le, category) (rate(symbi_action_duration_seconds_bucket{instance=~"$instance"}[5m])))', "{{category}}")], 8, unit="s")
panel("Security events / s", [
    ('sum by (check) (rate(symbi_security_events_total{instance=~"$instance"}[5m]))', "{{check}}"),
    ('sum by (reason) (rate(symbi_auth_failures_total{instance=~"$instance"}[5m]))', "auth {{reason}}"),
], 16)
next_line()
row("Audit, sandbox, approvals, messages")
panel("Audit appends / s by type", [('sum by (type) (rate(symbi_audit_appends_total{instance=~"$instance"}[5m]))', "{{type}}")], 0)
panel("Sandbox starts / s by tier", [('sum by (tier) (rate(symbi_sandbox_starts_total{instance=~"$instance"}[5m]))', "{{tier}}")], 8)
panel("Approval steps / s", [('sum by (step) (rate(symbi_approval_steps_total{instance=~"$instance"}[5m]))', "{{step}}")], 16)
next_line()
panel("Messages / s (bus actions)", [('sum by (outcome) (rate(symbi_action_duration_seconds_count{instance=~"$instance", category=~"message_send|publish"}[5m]))', "{{outcome}}")], 0)
panel("Message send latency (p99)", [('histogram_quantile(0.99, sum by (le) (rate(symbi_action_duration_seconds_bucket{instance=~"$instance", category=~"message_send|publish"}[5m])))', "p99")], 8, unit="s")
panel("Audit sink failures / s", [('sum by (type) (rate(symbi_audit_sink_failures_total{instance=~"$instance"}[5m]))', "{{type}}")], 16)
next_line()
row("Resources")
panel("Resource efficiency (allocated / capacity)", [('symbi_resource_efficiency{instance=~"$instance"}', "{{resource}}")], 0, unit="percentunit")
panel("Memory", [
    ('symbi_process_resident_memory_bytes{instance=~"$instance"}', "resident"),
    ('symbi_resource_allocated{instance=~"$instance", resource="memory_bytes"}', "reserved by tasks"),
], 8, unit="bytes")
panel("CPU reserved (cores)", [('symbi_resource_allocated{instance=~"$instance", resource="cpu_cores"}', "reserved"), ('symbi_resource_capacity{instance=~"$instance", resource="cpu_cores"}', "capacity")], 16)
next_line()
row("HTTP API, schedules, webhooks")
panel("Requests / s by status", [('sum by (status) (rate(symbi_http_requests_total{instance=~"$instance"}[5m]))', "{{status}}")], 0)
panel("Request latency p99 by route", [('histogram_quantile(0.99, sum by (le, route) (rate(symbi_http_request_duration_seconds_bucket{instance=~"$instance"}[5m])))', "{{route}}")], 8, unit="s")
panel("Schedule runs / s", [
    ('sum by (outcome) (rate(symbi_schedule_runs_total{instance=~"$instance"}[5m]))', "{{outcome}}"),
    ('sum by (outcome) (rate(symbi_webhook_requests_total{instance=~"$instance"}[5m]))', "webhook {{outcome}}"),
], 16)
next_line()

dash = {
    "title": "symbi runtime",
    "uid": "symbi-runtime",
    "tags": ["symbi"],
    "timezone": "utc",
    "schemaVersion": 39,
    "version": 1,
    "refresh": "30s",
    "time": {"from": "now-6h", "to": "now"},
    "templating": {"list": [
        {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Data source"},
        {"name": "instance", "type": "query", "datasource": DS, "query": "label_values(symbi_uptime_seconds, instance)",
         "includeAll": True, "multi": True, "current": {"text": "All", "value": "$__all"}, "refresh": 2},
    ]},
    "panels": panels,
}
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "symbi-dashboard.json")
with open(out, "w") as f:
    json.dump(dash, f, indent=2)
    f.write("\n")
print(out)
