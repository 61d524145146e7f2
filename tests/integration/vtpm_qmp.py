#!/usr/bin/env python3
"""vtpm_qmp.py SOCKET COMMAND [JSON-ARGUMENTS] - one QMP command, its
"return" member printed as JSON (exit 1 on an error answer);
vtpm_qmp.py SOCKET wait-migration [SECONDS] - polls query-migrate until the
migration ends; exit 0 when it completed."""
import json
import socket
import sys
import time


def send(f, cmd, args=None):
    msg = {"execute": cmd}
    if args:
        msg["arguments"] = args
    f.write(json.dumps(msg) + "\n")
    f.flush()
    while True:
        r = json.loads(f.readline())
        if "return" in r or "error" in r:
            return r


def main():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sys.argv[1])
    f = s.makefile("rw")
    json.loads(f.readline())
    send(f, "qmp_capabilities")
    if sys.argv[2] == "wait-migration":
        end = time.time() + float(sys.argv[3] if len(sys.argv) > 3 else 60)
        while time.time() < end:
            r = send(f, "query-migrate")["return"]
            if r.get("status") in ("completed", "failed", "cancelled"):
                print(json.dumps({"status": r["status"], "total-time-ms": r.get("total-time"),
                                  "downtime-ms": r.get("downtime")}))
                sys.exit(0 if r["status"] == "completed" else 1)
            time.sleep(0.05)
        sys.exit("migration did not end in time")
    r = send(f, sys.argv[2], json.loads(sys.argv[3]) if len(sys.argv) > 3 else None)
    if "error" in r:
        print(json.dumps(r["error"]))
        sys.exit(1)
    print(json.dumps(r["return"]))


if __name__ == "__main__":
    main()
