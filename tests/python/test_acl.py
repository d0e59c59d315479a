"""ACL users with redis-py: `username=`/`password=` clients (as managed
Redis services configure them), a connection pool of such clients, the
NOPERM errors redis-py raises, and a user changed while its clients stay
connected.

Runs under pytest, or standalone (`python3 test_acl.py`) with a closing
`python: N passed, M failed` line. The server binary is $CITADEL_BIN, else
<target>/release/citadel.
"""

import os
import sys

import redis

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_citadel import Citadel, run_tests  # noqa: E402

SERVER = None


def setup_module(module=None):
    global SERVER
    SERVER = Citadel()


def teardown_module(module=None):
    if SERVER:
        SERVER.cleanup()


def admin():
    return SERVER.client(decode_responses=True)


def test_username_password_client_runs_as_its_user():
    a = admin()
    assert a.acl_setuser("py-app", enabled=True, passwords=["+s3cret"], keys=["app:*"],
                         commands=["+@read", "+@write", "-flushall", "+acl|whoami"], reset=True)
    app = SERVER.client(username="py-app", password="s3cret", decode_responses=True)
    assert app.acl_whoami() == "py-app"
    assert app.set("app:1", "v") is True
    assert app.get("app:1") == "v"
    try:
        app.get("other")
        raise AssertionError("a key outside app:* was read")
    except redis.exceptions.NoPermissionError as e:
        assert "no permissions to access one of the keys" in str(e)
    try:
        app.flushall()
        raise AssertionError("flushall ran")
    except redis.exceptions.NoPermissionError as e:
        assert "'flushall' command" in str(e)
    info = [c for c in a.client_list() if c["user"] == "py-app"]
    assert len(info) == 1
    assert a.client_kill_filter(user="py-app") == 1
    try:
        a.client_kill_filter(user="nobody")
        raise AssertionError("CLIENT KILL USER of an unknown user")
    except redis.exceptions.ResponseError as e:
        assert "No such user 'nobody'" in str(e)


def test_wrong_password_and_disabled_user_are_refused():
    a = admin()
    a.acl_setuser("py-off", enabled=False, passwords=["+pw"], reset=True)
    for user, pw in [("py-off", "pw"), ("py-app", "wrong"), ("nobody", "x")]:
        try:
            SERVER.client(username=user, password=pw).ping()
            raise AssertionError("%s got in" % user)
        except redis.exceptions.AuthenticationError as e:
            assert "WRONGPASS" in str(e) or "invalid username-password" in str(e)
    log = a.acl_log(count=3)
    assert log[0]["reason"] == "auth" and log[0]["username"] == "nobody"


def test_pooled_clients_see_a_user_changed_while_connected():
    a = admin()
    a.acl_setuser("py-pool", enabled=True, passwords=["+pw"], keys=["*"], commands=["+get", "+set"],
                  reset=True)
    pool = redis.ConnectionPool(host="127.0.0.1", port=SERVER.port, username="py-pool", password="pw",
                                decode_responses=True)
    clients = [redis.Redis(connection_pool=pool) for _ in range(4)]
    conns = [pool.get_connection() for _ in range(4)]
    for c in conns:
        pool.release(c)
    assert [c.set("pool:k", "v") for c in clients] == [True] * 4
    a.acl_setuser("py-pool", commands=["-set"])
    for c in clients:
        try:
            c.set("pool:k", "w")
            raise AssertionError("SET ran after -set")
        except redis.exceptions.NoPermissionError:
            pass
        assert c.get("pool:k") == "v"
    assert a.acl_deluser("py-pool") == 1
    try:
        clients[0].get("pool:k")
        raise AssertionError("a deleted user's client still runs commands")
    except (redis.exceptions.ConnectionError, redis.exceptions.AuthenticationError):
        pass


def test_requirepass_is_the_default_users_password():
    a = admin()
    assert a.config_set("requirepass", "topsecret")
    try:
        try:
            SERVER.client().get("x")
            raise AssertionError("no password needed")
        except redis.exceptions.AuthenticationError:
            pass
        d = SERVER.client(password="topsecret", decode_responses=True)
        assert d.acl_whoami() == "default"
        assert "#" in d.acl_getuser("default")["passwords"][0] or d.acl_getuser("default")["passwords"]
        named = SERVER.client(username="default", password="topsecret", decode_responses=True)
        assert named.ping() is True
    finally:
        SERVER.client(password="topsecret").config_set("requirepass", "")
    assert admin().acl_getuser("default")["flags"] == ["on", "nopass"]


if __name__ == "__main__":
    sys.exit(run_tests(globals()))
