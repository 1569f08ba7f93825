"""The web console end to end: Debian's chromium, driven by Playwright, against a real
`mai serve` (embedded default) whose model is the scripted OpenAI-compatible test server.

Each test opens fresh browser contexts on one shared server. Screenshots of every page land in
tests/web/screenshots/ (git-ignored) for a reviewer to look at.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    Route,
    expect,
    sync_playwright,
)

from tests.conftest import unavailable
from tests.observability.openai_server import OpenAIServer
from tests.real_server import serve_mai
from tests.web.scripted import SENT, respond, slow_answer

pytestmark = [pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parent / "screenshots"
ADMIN_EMAIL = "lead@example.com"
PASSWORD = "Correct-horse-9"
WAIT_MS = 60_000
expect.set_options(timeout=WAIT_MS)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One `mai serve` for the module, with an administrator who may decide any approval."""
    data = tmp_path_factory.mktemp("console") / "data"
    env = {
        "MAI_ADMIN_EMAIL": ADMIN_EMAIL,
        "MAI_ADMIN_PASSWORD": PASSWORD,
        # Every test signs people up and in from 127.0.0.1 within a minute.
        "MAI_AUTH_RATE_LIMIT_PER_MINUTE": "1000",
        # Each request's timing, for the log a failing test's report ends with.
        "MAI_LOG_LEVEL": "INFO",
    }
    with (
        OpenAIServer(structured={"route": "tools"}, respond=respond) as llm,
        serve_mai(llm, data, env) as url,
    ):
        yield url


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    """The Playwright driver (it never downloads a browser: chromium comes from apt)."""
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Headless Debian chromium."""
    if not CHROMIUM.exists():
        unavailable("Debian's chromium (apt-get install chromium chromium-driver)")
    launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
    yield launched
    launched.close()


class Contexts:
    """Browser contexts opened by one test, closed at its end."""

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self.opened: list[BrowserContext] = []
        self.errors: list[str] = []

    def page(self, width: int = 1100, height: int = 800) -> Page:
        """A page in a fresh context (its own storage: its own signed-in user)."""
        context = self.browser.new_context(viewport={"width": width, "height": height})
        context.set_default_timeout(WAIT_MS)
        self.opened.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: self.errors.append(f"{page.url}: {error}"))
        return page


@pytest.fixture
def contexts(browser: Browser) -> Iterator[Contexts]:
    """Fresh contexts for a test."""
    opened = Contexts(browser)
    yield opened
    for context in opened.opened:
        context.close()


def shot(page: Page, name: str, full_page: bool = True) -> None:
    """Save a screenshot for the reviewer."""
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full_page)


def check_page(contexts: Contexts, page: Page) -> None:
    """What every console page must be: no script errors, every control labelled, and no
    sideways scrolling at the page's width."""
    assert contexts.errors == [], contexts.errors
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea')]
            .filter((el) => el.type !== 'hidden' && !el.closest('[hidden]'))
            .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
            .map((el) => el.outerHTML)"""
    )
    assert unlabelled == [], unlabelled
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px"


def sign_up(page: Page, base: str, email: str) -> None:
    """Create an account through the console's sign-up form."""
    page.goto(f"{base}/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_role("link", name="Create an account").click()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    expect(composer(page)).to_be_visible()
    expect(page.locator("#account-email")).to_have_text(email)


def sign_in(page: Page, base: str, email: str) -> None:
    """Sign in through the console's sign-in form."""
    page.goto(f"{base}/#/signin")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#account-email")).to_have_text(email)


def composer(page: Page) -> Any:
    """The message box of the chat."""
    return page.get_by_role("textbox", name="Message")


def ask(page: Page, message: str) -> None:
    """Type a message and send it with Enter."""
    composer(page).fill(message)
    composer(page).press("Enter")


def token_of(page: Page) -> str:
    """The access token the console keeps for its user."""
    session = page.evaluate("() => JSON.parse(localStorage.getItem('mai.session'))")
    return str(session["access_token"])


def api(base: str, page: Page, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """Call the public API as the page's user (to check what the console did)."""
    headers = {"Authorization": f"Bearer {token_of(page)}"}
    return httpx.request(method, f"{base}/api/v1/{path}", headers=headers, timeout=30, **kwargs)


def answer(page: Page) -> Any:
    """The text of the last assistant message."""
    return page.locator(".msg.assistant .content").last


def email() -> str:
    return f"user-{uuid.uuid4().hex[:8]}@example.com"


def test_sign_up_stream_reload_and_continue(base: str, contexts: Contexts) -> None:
    page = contexts.page()
    sign_up(page, base, email())
    check_page(contexts, page)
    shot(page, "01-chat-empty")

    joins: list[dict[str, str]] = []
    page.on(
        "request",
        lambda request: (
            joins.append(request.headers)
            if re.search(r"/api/v1/agent/runs/[^/]+/stream$", request.url)
            else None
        ),
    )
    ask(page, "Tell me something slow")
    expect(answer(page)).to_contain_text("word3")
    assert "word40" not in answer(page).inner_text(), "the answer did not stream"
    expect(page.get_by_role("button", name="Stop")).to_be_visible()
    shot(page, "02-chat-streaming")

    # A reload mid-answer rejoins the run from the last event this tab saw, and the answer is
    # finished exactly once (no word lost or repeated).
    page.reload()
    expect(answer(page)).to_contain_text("word40")
    expect(answer(page)).to_have_text(slow_answer())
    assert joins, "the reloaded page did not rejoin the run"
    assert all(h.get("last-event-id") for h in joins), joins
    expect(page.get_by_role("button", name="Stop")).to_be_hidden()
    expect(page.locator(".conversation-list li")).to_have_count(1)
    check_page(contexts, page)
    shot(page, "03-chat-after-reload")


def test_stop_button_cancels_the_run(base: str, contexts: Contexts) -> None:
    page = contexts.page()
    sign_up(page, base, email())
    ask(page, "Another slow one please")
    expect(answer(page)).to_contain_text("word2")
    page.get_by_role("button", name="Stop").click()
    expect(page.locator(".msg.assistant").last).to_contain_text("Stopped.")
    expect(page.get_by_role("button", name="Stop")).to_be_hidden()
    conversation = page.evaluate("() => location.hash").split("/")[-1]
    runs = api(base, page, "GET", f"agent/conversations/{conversation}/runs").json()
    assert runs[0]["status"] == "cancelled", runs
    assert "word40" not in answer(page).inner_text()
    shot(page, "04-chat-stopped")


def test_expired_session_returns_to_sign_in_and_keeps_the_draft(
    base: str, contexts: Contexts
) -> None:
    page = contexts.page()
    address = email()
    sign_up(page, base, address)
    composer(page).fill("A draft I do not want to lose")
    # The session ends elsewhere (signed out on another device): access and refresh revoked.
    assert api(base, page, "POST", "auth/logout").status_code == 204
    composer(page).press("Enter")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.locator(".auth .notice")).to_contain_text("draft is kept")
    shot(page, "05-session-expired")
    page.get_by_label("Email").fill(address)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(composer(page)).to_have_value("A draft I do not want to lose")


def test_send_email_approved_from_the_inbox_by_another_user(base: str, contexts: Contexts) -> None:
    requester = contexts.page()
    sign_up(requester, base, email())
    ask(requester, "Please email Ada the minutes")
    pending = requester.locator(".msg.assistant .approval.pending")
    expect(pending).to_contain_text("send_email")
    expect(pending).to_contain_text("ada@example.com")
    approval_id = pending.get_attribute("data-approval-id")
    check_page(contexts, requester)
    shot(requester, "06-chat-awaiting-approval")

    approver = contexts.page()
    sign_in(approver, base, ADMIN_EMAIL)
    approver.get_by_role("link", name="Approvals").click()
    card = approver.locator(f"#approval-{approval_id}")
    expect(card).to_contain_text("send_email")
    expect(card.locator(".expiry")).to_contain_text("left")
    expect(approver.get_by_text("(live)")).to_be_visible()
    check_page(contexts, approver)
    shot(approver, "07-inbox-pending")

    # A second request (another conversation) arrives while the inbox is open: live (SSE).
    turn = api(
        base, requester, "POST", "agent/query", json={"message": "please email Ada the agenda"}
    )
    assert turn.json()["status"] == "awaiting_approval", turn.text
    second_id = turn.json()["approvals"][0]["id"]
    expect(approver.locator(".approval.pending")).to_have_count(2)

    # Modify with invalid JSON is refused before sending; then a plain approve.
    card.get_by_text("Modify the arguments").click()
    card.get_by_label("Arguments (JSON)").fill("{not json")
    card.get_by_role("button", name="Approve with these arguments").click()
    expect(card.get_by_role("alert")).to_contain_text("not valid JSON")
    card.get_by_role("button", name="Approve", exact=True).click()

    # The requester's page learns of the decision and shows the resumed turn's answer.
    expect(requester.locator(f"#approval-{approval_id}")).to_contain_text("Approved")
    expect(requester.locator(".msg.assistant .content").filter(has_text=SENT)).to_have_count(1)
    expect(requester.locator(".tool[data-tool=send_email]").last).to_contain_text("Used send_email")
    expect(requester.get_by_text("Calling send_email")).to_have_count(0)
    shot(requester, "08-chat-approved")
    expect(approver.locator(f"tr[data-approval-id='{approval_id}']")).to_contain_text("approved")
    shot(approver, "09-inbox-history")

    # The second one is rejected with a reason, and lands in the history.
    second = approver.locator(f"#approval-{second_id}")
    second.get_by_label("Reason (optional; the model sees it)").fill("Not today")
    second.get_by_role("button", name="Reject").click()
    rejected = approver.locator(f"tr[data-approval-id='{second_id}']")
    expect(rejected).to_contain_text("rejected")
    expect(rejected).to_contain_text("Not today")
    expect(approver.locator(".approval.pending")).to_have_count(0)


def test_upload_search_cite_feedback_and_admin_list(
    base: str, contexts: Contexts, tmp_path: Path
) -> None:
    handbook = tmp_path / "handbook.md"
    handbook.write_text(
        "# Staff handbook\n\nEvery employee gets twenty-five days of paid holidays a year.\n\n"
        "The office opens at nine.\n"
    )
    notes = tmp_path / "notes.txt"
    notes.write_text("Meeting notes: the budget review is on Friday.\n")
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4 this is not really a pdf")

    page = contexts.page()
    address = email()
    sign_up(page, base, address)
    page.get_by_role("link", name="Knowledge").click()
    page.get_by_label("Choose files", exact=True).set_input_files(
        [str(handbook), str(notes), str(broken)]
    )
    for name in ("handbook.md", "notes.txt"):
        expect(page.locator(f".uploads li[data-filename='{name}'] .badge")).to_have_text("ready")
    expect(page.locator(".uploads li[data-filename='broken.pdf'] .badge")).to_have_text("failed")
    expect(page.locator("table tbody tr")).to_have_count(3)
    page.get_by_label("Search the knowledge base").fill("paid holidays")
    page.get_by_role("button", name="Search", exact=True).click()
    first = page.locator(".results .hit").first
    expect(first).to_contain_text("Staff handbook")
    assert re.search(r"score \d\.\d{3}", first.inner_text())
    check_page(contexts, page)
    shot(page, "10-knowledge-base")

    page.get_by_role("link", name="Chat").click()
    ask(page, "What does the handbook say about holidays?")
    source = page.locator(".msg.assistant .sources a").first
    expect(source).to_contain_text("Staff handbook")
    # One question, one answer (its tools and sources shown once).
    expect(page.locator(".msg.user")).to_have_count(1)
    expect(page.locator(".msg.assistant")).to_have_count(1)
    expect(page.locator(".msg.assistant .tool[data-tool=kb_search]")).to_contain_text("Used")
    page.get_by_role("button", name="Good answer").click()
    expect(page.get_by_role("button", name="Good answer")).to_have_attribute("aria-pressed", "true")
    shot(page, "11-chat-sources-feedback")
    source.click()
    expect(page.locator(".detail")).to_contain_text("handbook.md")

    # The lead sees the rating in the admin feedback list, at phone width.
    admin = contexts.page(width=390, height=844)
    sign_in(admin, base, ADMIN_EMAIL)
    admin.get_by_role("link", name="Admin").click()
    row = admin.locator("#feedback-table tbody tr").filter(has_text=address)
    expect(row).to_contain_text("up")
    expect(admin.locator(".chart").first).to_be_visible()
    check_page(contexts, admin)
    shot(admin, "12-admin-phone")


def test_admin_shares_a_collection_and_its_reader_finds_its_document(
    base: str, contexts: Contexts, tmp_path: Path
) -> None:
    manual = tmp_path / "boiler.md"
    manual.write_text(
        "# Boiler manual\n\n## Safety\n\nThe boiler pressure must stay under three bar.\n\n"
        "## Service\n\nA technician bleeds the radiators every October.\n"
    )
    name = f"Plant-{uuid.uuid4().hex[:6]}"
    reader_email = email()
    reader = contexts.page(width=390, height=844)
    sign_up(reader, base, reader_email)

    admin = contexts.page()
    sign_in(admin, base, ADMIN_EMAIL)
    admin.get_by_role("link", name="Knowledge").click()
    create = admin.get_by_role("form", name="New collection")
    create.get_by_label("Collection name").fill(name)
    create.get_by_role("button", name="Create collection").click()
    card = admin.locator(f".collection[data-collection='{name}']")
    expect(card).to_contain_text("private")

    # Share it with the reader (read only), with the keyboard-reachable sharing editor.
    card.get_by_text("Share", exact=True).click()
    card.get_by_role("button", name="Add member").click()
    card.get_by_label("Member email").fill(reader_email)
    card.get_by_role("button", name="Save sharing").click()
    expect(card.locator(".meta")).to_contain_text(f"{reader_email} (read)")

    # Upload into it; the list shows the document with its collection.
    admin.get_by_label("Upload into").select_option(label=name)
    expect(admin.get_by_label("Label (optional)")).to_be_hidden()
    admin.get_by_label("Choose files", exact=True).set_input_files(str(manual))
    expect(admin.locator(".uploads li[data-filename='boiler.md'] .badge")).to_have_text("ready")
    expect(card.locator(".meta")).to_contain_text("1 document ")
    admin.get_by_label("Collection", exact=True).select_option(label=name)
    admin.get_by_role("button", name="Filter").click()
    row = admin.locator("table tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Boiler manual")
    expect(row).to_contain_text(name)

    # Its detail lists its chunks, in order, with where they sit.
    row.get_by_role("link", name="Boiler manual").click()
    chunks = admin.locator(".detail .chunks li")
    expect(chunks.first).to_be_visible()
    expect(admin.locator(".detail .chunks")).to_contain_text("under three bar")
    expect(admin.locator(".detail .chunks")).to_contain_text("bleeds the radiators")
    expect(admin.locator(".detail")).to_contain_text("Version")
    check_page(contexts, admin)
    shot(admin, "15-knowledge-collections-admin")

    # The reader sees the collection (no admin controls) and finds its document in search.
    reader.get_by_role("link", name="Knowledge").click()
    shared = reader.locator(f".collection[data-collection='{name}']")
    expect(shared).to_contain_text("you may read ")
    expect(shared.get_by_role("button")).to_have_count(0)
    expect(reader.get_by_role("form", name="New collection")).to_have_count(0)
    reader.get_by_label("In collection").select_option(label=name)
    reader.get_by_label("Search the knowledge base").fill("boiler pressure")
    reader.get_by_role("button", name="Search", exact=True).click()
    hit = reader.locator(".results .hit").first
    expect(hit).to_contain_text("Boiler manual")
    expect(hit.locator(".badge.collection")).to_have_text(name)
    check_page(contexts, reader)
    shot(reader, "16-knowledge-collections-reader-phone")


def test_docs_render_with_the_network_blocked(base: str, contexts: Contexts) -> None:
    page = contexts.page()
    blocked: list[str] = []

    def only_local(route: Route) -> None:
        if route.request.url.startswith(base):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    page.route("**/*", only_local)
    page.goto(f"{base}/docs")
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
    expect(page.locator(".swagger-ui")).to_contain_text("/api/v1/agent/stream")
    shot(page, "13-docs-offline", full_page=False)
    page.goto(f"{base}/redoc")
    expect(page.get_by_text("/api/v1/agent/stream").first).to_be_attached()
    shot(page, "14-redoc-offline", full_page=False)
    assert blocked == [], blocked
    schema = json.loads(httpx.get(f"{base}/openapi.json", timeout=30).text)
    assert "/" not in schema["paths"], "console pages are not part of the API"
