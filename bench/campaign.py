"""A campaign through the simulated SMS provider, with the sender killed mid-campaign.

A generated brand (``cloud.synthetic.campaign_brand``, landed through the brand's entry points: a
stores file, a CRM member list, the order history through the order stream, SMS consent through the
consent API's function): persons with phones, a home store each (some in a time zone where it is now
night), SMS consent for most, an order history the tags compute into a lifecycle stage and value
tier, a planted true uplift per computed stage. One SMS campaign to all of them with a 10% stratified control group: a child process starts
sending and is killed (SIGKILL) after a third of the messages reached the provider; a new sender
reconciles what the dead one left half-done (QuerySendDetails by OutId) and finishes, timed. Then
the window's orders are planted and the campaign's results read. Last stdout line is JSON:
``sends_per_s`` (the restarted sender, one process), ``sent_without_consent``,
``sent_in_quiet_hours``, ``duplicates_after_restart`` (messages the provider got twice for one
send key), ``uplift_error`` (|estimated - planted| / planted, intention to treat), ``generate_s``
(the brand's landing; stderr has where its time went).

The default is 50,000 persons because the uplift target (within 20% of the planted ~6 points) is a
statistical one: with a 10% control of 20,000 persons the estimate's 95% interval alone is about
±1.7 points (±28%), so runs there miss or meet it by chance (0.009-0.256 over five runs); at 50,000
it is about ±1.0 point.

    uv run python bench/campaign.py [--persons 50000] [--db /tmp/campaign.sqlite]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import httpx

from cloud.activation import campaigns
from cloud.activation.consent import Rules, in_quiet_hours
from cloud.activation.sender import CampaignSender
from cloud.channels.notice import SmsChannel
from cloud.channels.sms import SmsSender
from cloud.clock import utcnow
from cloud.runtime import open_cdp
from cloud.synthetic import campaign_brand


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_up(url: str) -> None:
    for _ in range(100):
        try:
            httpx.get(url + "messages", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise SystemExit("the simulated SMS provider did not start")


def _messages(url: str) -> list[dict]:
    return httpx.get(url + "messages", timeout=60).json()


def _sent_so_far(db) -> int:
    return int(db.scalar("SELECT COUNT(*) FROM marketing_sends WHERE status IN ('sending', 'sent')"))


def _sender(db, url: str) -> CampaignSender:
    return CampaignSender(db, {"sms": SmsChannel(SmsSender(url, "品牌"), "SMS_0")}, workers=48)


def child(db_path: str, url: str) -> None:
    db = open_cdp(db_path, sample_catalogue=False)
    sender = _sender(db, url)
    while True:
        if sender.run_once(batch=2000).sent == 0:
            time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=50_000)
    parser.add_argument("--db", default=None)
    parser.add_argument("--child", nargs=2, metavar=("DB", "URL"))
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    tmp = tempfile.mkdtemp(prefix="campaign-bench-")
    db_path = args.db or str(Path(tmp) / "cdp.sqlite")
    db = open_cdp(db_path, sample_catalogue=False)
    now = utcnow()
    started = time.perf_counter()
    brand = campaign_brand.generate(db, persons=args.persons, now=now)
    generate_s = time.perf_counter() - started
    port = _free_port()  # the provider is its own process, as a real one would be
    sim_proc = subprocess.Popen([sys.executable, "-m", "cloud.channels.sms_sim", "--port", str(port)],
                                stdout=subprocess.DEVNULL)
    sim_url = f"http://127.0.0.1:{port}/"
    _wait_up(sim_url)
    template = campaigns.create_template(db, channel="sms", code="SMS_CARE_01", body="{surname}{title}，您的专属礼已到店 {link}",
                                         params=["surname", "title", "link"], actor="bench")
    campaigns.approve_template(db, template["id"], actor="bench")
    campaign = campaigns.create(db, name="回购关怀", segment_id=brand.segment_id, channel="sms",
                                template_id=template["id"], holdout_pct=10, window_days=7, actor="bench")
    campaign = campaigns.launch(db, campaign["id"], now=now)
    treatment = campaign["audience"] - campaign["control"]
    # a sender in its own process, killed once a third of the messages reached the provider
    proc = subprocess.Popen([sys.executable, __file__, "--child", db_path, sim_url], stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while _sent_so_far(db) < treatment // 3 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    at_kill = len(_messages(sim_url))
    # the restarted sender takes over rows claimed more than a lease ago (requests the dead one had in
    # flight have landed at the provider by then)
    time.sleep(1.5)
    sender = _sender(db, sim_url)
    reconciled = sender.reconcile(stale_s=1)
    started = time.perf_counter()
    tally = sender.run(batch=2000)
    seconds = time.perf_counter() - started
    sender.close()
    sent = _messages(sim_url)
    keys = Counter(m["out_id"] for m in sent)
    duplicates = sum(n - 1 for n in keys.values() if n > 1)
    tz = dict(db.rows("SELECT m.id, s.timezone FROM members m JOIN stores s ON s.id = m.home_store"))
    without, quiet = 0, 0
    for m in sent:
        person = brand.phones[m["phone"]]
        without += person not in brand.consented
        quiet += in_quiet_hours(datetime.fromtimestamp(m["ts"]).astimezone(), tz[person], Rules())
    launched = datetime.fromisoformat(campaigns.get(db, campaign["id"])["launched_at"])
    planted = campaign_brand.outcomes(db, brand, campaign_id=campaign["id"], launched=launched)
    result = campaigns.results(db, campaign["id"])
    estimate = result["uplift"]["estimate"]
    after = campaigns.get(db, campaign["id"])
    print(json.dumps({"persons": args.persons, "treatment": treatment, "control": campaign["control"],
                      "sent_before_kill": at_kill, "reconciled": reconciled, "sends_after_restart": tally.sent,
                      "skipped": after["skipped"], "deferred_quiet_hours": tally.deferred, "sends": after["sends"],
                      "generate_seconds": brand.seconds, "as_drawn": brand.as_drawn},
                     ensure_ascii=False), file=sys.stderr)
    sim_proc.terminate()
    sim_proc.wait()
    print(json.dumps({
        "sends_per_s": round(tally.sent / seconds, 1), "sent_without_consent": without, "sent_in_quiet_hours": quiet,
        "duplicates_after_restart": duplicates, "uplift_estimated": estimate, "uplift_ci95": result["uplift"]["ci95"],
        "uplift_planted": round(planted, 5), "uplift_error": round(abs(estimate - planted) / planted, 4),
        "messages": len(sent), "control": campaign["control"], "treatment": treatment,
        "generate_s": round(generate_s, 1),
    }))


if __name__ == "__main__":
    main()
