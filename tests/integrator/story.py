#!/usr/bin/env python3
"""The integrator's story, driven through a client generated from openapi.yaml by
openapi-python-client (strict models: a response the spec misdescribes fails to decode).

    story.py <base url> <admin username> <admin password> <receiver script>

An admin registers an app; a user adds the app's bot to a conversation; the bot (its API
key) reads and sends there, pages history, uploads a file and attaches it, registers a
webhook and receives the conversation's next message, verified with the official
standardwebhooks library by tests/webhooks/receiver.py; the delivery log, the event feed, a
replay, a rotation and a key without a scope behave as documented. Exits non-zero with the
step that failed.
"""

import io
import json
import os
import subprocess
import sys
import tempfile
import time

from syncchat_client import AuthenticatedClient, Client
from syncchat_client.api.apps import create_app, create_app_key, list_apps, revoke_app_key
from syncchat_client.api.auth import login, register
from syncchat_client.api.conversations import create_conversation, get_conversation, list_conversations
from syncchat_client.api.files import upload_file
from syncchat_client.api.messages import list_messages, send_message
from syncchat_client.api.users import me
from syncchat_client.api.webhooks import (
    create_webhook,
    list_events,
    list_webhook_deliveries,
    list_webhooks,
    replay_webhook,
    rotate_webhook_secret,
)
from syncchat_client.models import (
    AppInput,
    CreateConversationInput,
    EventType,
    LoginInput,
    NewMessage,
    NewWebhook,
    Problem,
    RegisterInput,
    Replay,
    Scope,
    UploadFileBody,
)
from syncchat_client.types import File

STEP = "start"


def step(name):
    global STEP
    STEP = name
    print(f"· {name}", flush=True)


def ok(response, status=200):
    assert response.status_code == status, f"{STEP}: HTTP {response.status_code}: {response.content[:500]!r}"
    assert response.parsed is not None, f"{STEP}: the answer did not decode: {response.content[:500]!r}"
    return response.parsed


def main():
    base, admin_name, admin_password, receiver_script = sys.argv[1:5]
    api = base.rstrip("/") + "/api/v1"
    anon = Client(base_url=api, raise_on_unexpected_status=False)

    step("the admin logs in")
    session = ok(login.sync_detailed(client=anon, body=LoginInput(login=admin_name, password=admin_password)))
    admin = AuthenticatedClient(base_url=api, token=session.access_token, raise_on_unexpected_status=False)

    step("the admin registers an app; its first key is shown once")
    scopes = list(Scope)  # the spec's enum: every scope there is
    made = ok(create_app.sync_detailed(client=admin, body=AppInput(name="Story Bot", scopes=scopes, description="the integrator story")))
    assert made.key.secret.startswith(f"sck_{made.key.prefix}_"), made.key.secret
    assert made.bot_user.is_bot is True
    listed = ok(list_apps.sync_detailed(client=admin))
    assert made.key.secret not in json.dumps(listed.to_dict()), "a list never shows a secret"
    bot = AuthenticatedClient(base_url=api, token=made.key.secret, raise_on_unexpected_status=False)
    assert ok(me.sync_detailed(client=bot)).username == made.bot_user.username

    step("a user adds the bot to a conversation")
    name = f"story{int(time.time() * 1000) % 10**9}"
    user_session = ok(register.sync_detailed(client=anon, body=RegisterInput(username=name, email=f"{name}@example.com", password="correct horse battery")))
    user = AuthenticatedClient(base_url=api, token=user_session.access_token, raise_on_unexpected_status=False)
    conv = ok(create_conversation.sync_detailed(client=user, body=CreateConversationInput(participant_ids=[made.bot_user.id], title="support")))
    ok(send_message.sync_detailed(conv.id, client=user, body=NewMessage(body="hello, bot")))

    step("the bot reads and sends there")
    convs = ok(list_conversations.sync_detailed(client=bot))
    assert [c.id for c in convs.items] == [conv.id], convs
    assert ok(get_conversation.sync_detailed(conv.id, client=bot)).title == "support"
    for i in range(5):
        ok(send_message.sync_detailed(conv.id, client=bot, body=NewMessage(body=f"reply {i}", client_message_id=f"story-{i}")))
    again = ok(send_message.sync_detailed(conv.id, client=bot, body=NewMessage(body="reply 0", client_message_id="story-0")))
    assert again.seq == 2, "a retried send returns the first message"

    step("the bot pages history")
    page = ok(list_messages.sync_detailed(conv.id, client=bot, limit=2))
    assert [m.seq for m in page.items] == [5, 6], [m.seq for m in page.items]
    older = ok(list_messages.sync_detailed(conv.id, client=bot, before=int(page.next_cursor), limit=10))
    assert [m.seq for m in older.items] == [1, 2, 3, 4]
    assert older.items[0].sender.is_bot is False and older.items[1].sender.is_bot is True

    step("the bot uploads a file and attaches it")
    png = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8cfc0f01f0005000201a5d0a1e10000000049454e44ae426082")
    uploaded = ok(upload_file.sync_detailed(client=bot, body=UploadFileBody(file=File(payload=io.BytesIO(png), file_name="dot.png", mime_type="image/png"))))
    assert uploaded.content_type == "image/png", uploaded
    with_file = ok(send_message.sync_detailed(conv.id, client=bot, body=NewMessage(body="a picture", attachment_ids=[uploaded.id])))
    assert [a.id for a in with_file.attachments] == [uploaded.id]

    step("the bot registers a webhook; the next message arrives signed")
    out = tempfile.mkdtemp()
    hook = ok(create_webhook.sync_detailed(client=bot, body=NewWebhook(url="http://127.0.0.1:1/placeholder", events=[EventType.MESSAGE_CREATED])))
    # The receiver needs the secret, and the endpoint needs the receiver's port: start it,
    # then point the endpoint at it.
    receiver = subprocess.Popen(
        [sys.executable, receiver_script, "--port", "0", "--secrets", hook.secret, "--out", f"{out}/got.jsonl", "--mode-file", f"{out}/mode"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        port = int(receiver.stdout.readline().split()[1])
        from syncchat_client.api.webhooks import update_webhook
        from syncchat_client.models import WebhookChanges
        ok(update_webhook.sync_detailed(hook.id, client=bot, body=WebhookChanges(url=f"http://127.0.0.1:{port}/hooks")))
        assert [w.id for w in ok(list_webhooks.sync_detailed(client=bot)).items] == [hook.id]
        sent = ok(send_message.sync_detailed(conv.id, client=user, body=NewMessage(body="are you there?")))
        got = []
        for _ in range(200):
            if os.path.exists(f"{out}/got.jsonl"):
                got = [json.loads(l) for l in open(f"{out}/got.jsonl")]
            if got:
                break
            time.sleep(0.1)
        assert got, "the webhook arrived"
        assert got[0]["verified"] == [0], f"standardwebhooks verifies the signature: {got[0]}"
        assert got[0]["seq"] == sent.seq and got[0]["data"]["body"] == "are you there?", got[0]

        step("the delivery log, the event feed, a replay and a rotation")
        for _ in range(50):
            log = ok(list_webhook_deliveries.sync_detailed(hook.id, client=bot))
            if log.items and log.items[0].state == "delivered":
                break
            time.sleep(0.1)
        assert log.items[0].state == "delivered" and log.items[0].last_status == 200, log.items[0]
        feed = ok(list_events.sync_detailed(client=bot, limit=100))
        kinds = [e.type_ for e in feed.items]
        assert kinds[:2] == ["conversation.created", "app.added_to_conversation"], kinds
        assert str(feed.items[-1].id) == got[0]["webhookId"]
        queued = ok(replay_webhook.sync_detailed(hook.id, client=bot, body=Replay(delivery_ids=[log.items[0].id])))
        assert queued.queued == 1
        rotated = ok(rotate_webhook_secret.sync_detailed(hook.id, client=bot))
        assert rotated.secret != hook.secret and rotated.secret.startswith("whsec_")
    finally:
        receiver.kill()

    step("a key without a scope is refused, naming it; a revoked key stops")
    narrow = ok(create_app.sync_detailed(client=admin, body=AppInput(name="Reader", scopes=[Scope.MESSAGESREAD])))
    reader = AuthenticatedClient(base_url=api, token=narrow.key.secret, raise_on_unexpected_status=False)
    refused = send_message.sync_detailed(conv.id, client=reader, body=NewMessage(body="no"))
    assert refused.status_code == 403 and isinstance(refused.parsed, Problem), refused
    assert refused.parsed.code == "FORBIDDEN" and "messages:write" in refused.parsed.detail
    second = ok(create_app_key.sync_detailed(made.id, client=admin))
    ok(revoke_app_key.sync_detailed(made.id, made.key.id, client=admin))
    gone = me.sync_detailed(client=bot)
    assert gone.status_code == 401 and gone.parsed.code == "UNAUTHENTICATED", gone
    rotated_bot = AuthenticatedClient(base_url=api, token=second.secret, raise_on_unexpected_status=False)
    assert ok(me.sync_detailed(client=rotated_bot)).username == made.bot_user.username
    print("the integrator story passed", flush=True)


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"FAILED at step {STEP!r}: {e}", file=sys.stderr)
        sys.exit(1)
