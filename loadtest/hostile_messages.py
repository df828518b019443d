# Sends CONNS messages at once, each over one structure cap (see hostile_rss.sh).
import smtplib, sys, threading
port, conns, kind = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
if kind == "header":
    msg = "X-Long: " + " x\r\n".join(["y"] * 300000) + "\r\nSubject: s\r\n\r\nbody\r\n"
elif kind == "fields":
    msg = "".join(f"X-F{i}: v\r\n" for i in range(12000)) + "\r\nbody\r\n"
else:
    msg = "Content-Type: multipart/mixed; boundary=b\r\n\r\n" + "--b\r\nContent-Type: text/plain\r\n\r\nx\r\n" * 12000 + "--b--\r\n"
codes = []
def one():
    s = smtplib.SMTP("127.0.0.1", port, timeout=120)
    s.ehlo()
    s.mail("a@example.com"); s.rcpt("r@example.com")
    code, _ = s.data(msg.encode())
    codes.append(code)
    s.quit()
ts = [threading.Thread(target=one) for _ in range(conns)]
[t.start() for t in ts]; [t.join() for t in ts]
print(kind, len(msg), "bytes x", conns, "replies", sorted(set(codes)))
