"""A real aiosmtpd server for kanta-mail's tests, with what `python -m aiosmtpd` cannot be told
on its command line: AUTH (a user and password that MAIL then requires), recipients refused
with a chosen reply, and recipients whose message is never answered after its DATA (the server
stalls). Messages go to a Maildir through aiosmtpd's own Mailbox handler.

    python smtpd.py HOST:PORT MAILDIR [--auth USER:PASSWORD] [--reject ADDRESS=REPLY]... [--stall ADDRESS]...
                    [--ignore-noop]

--ignore-noop never answers NOOP (a connection the network dropped, as a client sees it).
"""

import argparse
import asyncio
import signal

from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Handler(Mailbox):
    def __init__(self, maildir, rejects, auth, stalls):
        super().__init__(maildir)
        self.rejects = rejects
        self.auth = auth
        self.stalls = stalls

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.auth and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.rejects.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"


    async def handle_DATA(self, server, session, envelope):
        if any(address.lower() in self.stalls for address in envelope.rcpt_tos):
            # The message arrived and no reply ever comes: the client cannot know its fate.
            await asyncio.sleep(3600)
        return await super().handle_DATA(server, session, envelope)


class DeafToNoop(SMTP):
    async def smtp_NOOP(self, arg):
        await asyncio.sleep(3600)


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode()
            and auth_data.password == password.encode()
        )
        # handled=False: aiosmtpd then answers 535 itself.
        return AuthResult(success=ok, handled=False)

    return check


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("listen")
    parser.add_argument("maildir")
    parser.add_argument("--auth")
    parser.add_argument("--reject", action="append", default=[])
    parser.add_argument("--stall", action="append", default=[])
    parser.add_argument("--ignore-noop", action="store_true")
    args = parser.parse_args()
    host, port = args.listen.rsplit(":", 1)
    rejects = {}
    for item in args.reject:
        address, reply = item.split("=", 1)
        rejects[address.lower()] = reply
    auth = None
    if args.auth:
        user, password = args.auth.split(":", 1)
        auth = authenticator(user, password)
    handler = Handler(args.maildir, rejects, auth, {address.lower() for address in args.stall})

    def factory():
        # Loopback only, so AUTH without TLS is allowed here (kanta sends a password in the
        # clear only to a loopback host).
        server = DeafToNoop if args.ignore_noop else SMTP
        return server(handler, authenticator=auth, auth_require_tls=False)

    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(loop.create_server(factory, host=host, port=int(port)))
    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    loop.add_signal_handler(signal.SIGINT, loop.stop)
    try:
        loop.run_forever()
    finally:
        server.close()


if __name__ == "__main__":
    main()
