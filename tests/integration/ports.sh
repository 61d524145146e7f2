# tests/integration/ports.sh - sourced by the tests that run servers:
# free_port_pair prints a port N with N and N+1 both free on 127.0.0.1 and
# below 32768 (the swtpm TCTI talks to the control channel on N+1; ports
# above are the kernel's ephemeral range, where clients may take them).
free_port_pair() {
	python3 - <<'PY'
import random, socket
for _ in range(200):
    p = random.randrange(2000, 32766)
    socks = []
    try:
        for q in (p, p + 1):
            s = socket.socket(); socks.append(s); s.bind(("127.0.0.1", q))
    except OSError:
        continue
    finally:
        for s in socks:
            s.close()
    print(p)
    break
PY
}
