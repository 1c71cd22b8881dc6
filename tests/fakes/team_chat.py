"""A Slack-compatible incoming webhook on 127.0.0.1: the team channel's fake.

Slack, Mattermost and Google Chat take ``POST <webhook URL>`` with a JSON body ``{"text": "..."}``
and answer 200 ``ok``. Slack refuses a body without text with 400 ``invalid_payload``, an unknown
hook with 404 ``no_service``, an archived channel with 410 ``channel_is_archived``, and more than
about one post a second with 429 and ``Retry-After``. A test queues the next answers with
``answer(...)``; every post is in ``requests`` and its text in ``texts``.
"""

from collections import deque

from tests.fakes.server import FakeRequest, FakeResponse, FakeServer

HOOK_PATH = "/services/T0LIVRA/B0TEAM/f4k3s3cr3t"


class FakeTeamChat(FakeServer):
    def __init__(self):
        super().__init__()
        self._answers: deque[FakeResponse] = deque()

    @property
    def webhook_url(self) -> str:
        return self.base_url + HOOK_PATH

    @property
    def texts(self) -> list[str]:
        return [request.json()["text"] for request in self.requests if request.path == HOOK_PATH]

    def answer(self, *responses: FakeResponse) -> None:
        self._answers.extend(responses)

    def handle(self, request: FakeRequest) -> FakeResponse:
        if request.method != "POST" or request.path != HOOK_PATH:
            return FakeResponse(404, "no_service")
        if not request.headers.get("Content-Type", "").startswith("application/json"):
            return FakeResponse(400, "invalid_payload")
        try:
            text = request.json().get("text")
        except ValueError:
            return FakeResponse(400, "invalid_payload")
        if not text:
            return FakeResponse(400, "no_text")
        if self._answers:
            return self._answers.popleft()
        return FakeResponse(200, "ok")
