"""TLS end to end: the real firmware has its modem (hwsim's A76XX SSL commands, whose
handshake is Python's OpenSSL) verify the real Mosquitto's certificate against the CA
in the watch's flash, /data/ca.pem."""
from __future__ import annotations

from cloud.tls import ensure_certificates
from hwsim.scenario import Scenario


def _logs(w) -> list[str]:
    return [e["line"] for e in w.events if e["type"] == "log"]


def test_the_ca_goes_to_the_modem_once_and_survives_a_power_cut(make_watch, cloud):
    with make_watch(Scenario(name="tls")) as w:
        assert w.wait_for(lambda e: e["type"] == "log" and e["line"] == "session: connected", 60)
        assert w.modem.certs and all(n.startswith("pers-") for n in w.modem.certs)
        first = w.wait_for(lambda e: e["type"] == "link" and e["state"] == "up", 5)
        assert first is not None and first.get("tls") is True
        mark = len(w.events)
        w.power_cut()
        assert w.wait_for(lambda e: e["type"] == "log" and e["line"] == "session: connected", 60, start=mark)
        written = [ln for ln in _logs(w) if ln.startswith("tls: CA written")]
        assert len(written) == 1, written  # the modem kept it (AT+CCERTLIST): not written again


def test_a_watch_provisioned_with_another_ca_cannot_connect_and_says_so(make_watch, cloud, tmp_path):
    other = ensure_certificates(tmp_path / "elsewhere", ["localhost", "127.0.0.1"]).cafile
    with make_watch(Scenario(name="tls-wrong-ca"), ca=other) as w:
        refused = w.wait_for(lambda e: e["type"] == "link" and e["state"] == "refused", 60)
        assert refused is not None and "TLS handshake failed" in refused["reason"], refused
        said = w.wait_for(lambda e: e["type"] == "log" and "does not verify against" in e["line"], 30)
        assert said is not None and said["line"].endswith("ca.pem"), said
        assert w.wait_for(lambda e: e["type"] == "log" and "+CCHOPEN: 0,15" in e["line"], 30)
        # a second attempt, after its back-off, fails the same way: never connected meanwhile
        mark = len(w.events)
        assert w.wait_for(lambda e: e["type"] == "link" and e["state"] == "refused", 60, start=mark)
        assert "session: connected" not in _logs(w)
        assert cloud.received("presence") == []
