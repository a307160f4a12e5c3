"""Replaying the lab's Wi-Fi capture through an edge and a real Mosquitto shows the registered
member's presence as a visit, and every minute's footfall, on the cloud (and no raw MAC there)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx

from provisioning.localstore import LocalStore

LAB = Path(__file__).resolve().parents[2] / "shared" / "data" / "wifi" / "fryza-sc6-61"
LAB_DAY = LAB / "sc6-61_2022-10-19_anonymized.pcap"
SECRET = "store-test-secret-0123456789abcdef"
#: A laptop with a stable MAC heard in the lab for 1.8 h: the member's registered phone here.
MEMBER_MAC = "c0:b6:f9:39:de:28"
#: The lab's fixed computers, as the capture's README lists them: the store's own equipment.
EQUIPMENT = """dc:fb:48:68:be:e4 dc:fb:48:8c:71:fc dc:fb:48:2a:52:e0 dc:fb:48:f5:c6:c2 dc:fb:48:e3:ab:78
dc:fb:48:00:51:90 dc:fb:48:75:d8:42 dc:fb:48:de:86:8d dc:fb:48:dd:c6:0b dc:fb:48:55:d5:78 dc:fb:48:c2:1d:64
40:ec:99:f9:34:a6 40:ec:99:8e:3f:63 40:ec:99:1f:3e:75""".split()


def test_lab_capture_shows_presence_and_footfall_on_the_cloud(mosquitto, models_dir, tmp_path):
    store = LocalStore(mosquitto.url, tmp_path, store="store1", share_group="cdp")
    store.env["INSTORE_WIFI_SECRET"] = SECRET
    try:
        api_url = store.start_cloud()
        with httpx.Client(base_url=api_url, timeout=30) as api:
            member = api.post("/v1/members", json={"name": "李伟", "phone": "13900000001", "consent": {"face": False}})
            member_id = member.json()["id"]
            registered = api.post(f"/v1/members/{member_id}/devices", json={"mac": MEMBER_MAC})
            assert registered.status_code == 201, registered.text
            secret_file = tmp_path / "secret"
            secret_file.write_text(SECRET)
            args = ["edge", "wifi", "run", "--source", str(LAB_DAY), "--store", "store1", "--device", "wifi1",
                    "--brand", "demo", "--broker", mosquitto.url, "--brand-secret-file", str(secret_file), "--once"]
            for mac in EQUIPMENT:
                args += ["--background-mac", mac]
            edge = subprocess.run([sys.executable, "-m", "provisioning", *args], capture_output=True, text=True, timeout=300)
            assert edge.returncode == 0, edge.stderr[-2000:]

            deadline = time.monotonic() + 60
            while True:
                visits = [v for v in api.get("/v1/stores/store1/visits").json() if v["member_id"] == member_id]
                minutes = api.get("/v1/stores/store1/footfall",
                                  params={"from": "2022-10-19T00:00:00Z", "to": "2022-10-20T00:00:00Z"}).json()
                if (visits and len(minutes) >= 110) or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
        assert visits, "the registered phone's presence became a visit of its member"
        assert all(v["signals"] == "wifi" and v["card_id"] is None for v in visits)  # no face: no guide card
        assert 110 <= len(minutes) <= 125 and max(m["people"] for m in minutes) >= 10
        with sqlite3.connect(tmp_path / "cloud.db") as db:
            dump = "\n".join(db.iterdump())
        assert MEMBER_MAC not in dump.lower() and MEMBER_MAC.replace(":", "") not in dump.lower()
    finally:
        store.stop()
