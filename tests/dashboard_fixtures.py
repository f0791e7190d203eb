"""Alert records and logged-in dashboard clients shared by the tests/web/ files."""

from __future__ import annotations

import re
import time
from typing import Any

from wirewatch.craft import BASE_TS

TOKEN = "test-token-" + "7" * 32


def fake_alert(i: int, **kw: Any) -> dict[str, Any]:
    """An EVE alert record as the engine writes it (port_scan / host_sweep alternating)."""
    a = {"timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000000+0000", time.gmtime(BASE_TS + i)), "event_type": "alert",
         "src_ip": f"10.{i // 62500 % 250}.{i // 250 % 250}.{i % 250 + 1}", "src_port": 1000 + i, "dest_ip": "192.168.1.1",
         "dest_port": 80 + i % 3, "proto": "TCP", "in_iface": "eth0", "flow_id": i,
         "alert": {"action": "allowed", "gid": 1, "signature_id": 9000001, "rev": 1, "signature": "WIREWATCH port scan",
                   "category": "Attempted Information Leak", "severity": 2},
         "type": "port_scan" if i % 2 else "host_sweep", "message": f"Possible port scan detected from alert {i}",
         "evidence": {"distinct_ports": 20 + i, "threshold": 20}}
    a.update(kw)
    return a


def store_with_alerts(path: str, count: int) -> str:
    """A SQLite store at `path` holding fake_alert(0..count-1), written through the real sink."""
    from wirewatch.store.sqlite_sink import SqliteSink

    sink = SqliteSink(path)
    sink.write([fake_alert(i) for i in range(count)])
    sink.close()
    return path


def login(client: Any, token: str = TOKEN) -> Any:
    r = client.get(f"/login?token={token}")
    assert r.status_code == 302, r.status_code
    return client


def csrf(client: Any) -> str:
    page = client.get("/").get_data(as_text=True)
    return re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
