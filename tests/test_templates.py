"""Email templates: full and sparse context, escaping, overrides, SendGrid dynamic templates."""

from __future__ import annotations

import pytest
from temporalio.testing import ActivityEnvironment

from activities.email import BUILT_IN_TEMPLATES, EmailActivities, EmailRequest, EmailTemplates
from core.events import LikeMagicEvent
from core.guest import guest_in_context
from tests.conftest import sample
from tests.fakes import FakeService
from tests.helpers import make_settings
from workflows.booking_confirmation import confirmation_request
from workflows.support_alert import alert_data
from workflows.welcome_email import welcome_request

TEMPLATES = EmailTemplates(None)


def event(name: str, **changes) -> LikeMagicEvent:
    return LikeMagicEvent.model_validate({**sample(name), **changes})


def data_for(kind: str, ev: LikeMagicEvent) -> dict:
    guest = guest_in_context(ev.context)
    if kind == "welcome":
        return welcome_request(ev, guest, "k").data
    if kind == "booking_confirmation":
        return confirmation_request(ev, guest, "k").data
    return alert_data(ev, guest)


def test_booking_confirmation_full_context():
    data = data_for("booking_confirmation", event("reservation_created"))
    data["property_name"] = "Hotel Zürich"
    mail = TEMPLATES.render("booking_confirmation", data)
    assert mail.subject == "Your booking at Hotel Zürich is confirmed: Thu, 10 Dec 2026"
    assert "Hello Ana Silva," in mail.text
    assert "Arrival:      Thu, 10 Dec 2026" in mail.text
    assert "Departure:    Sun, 13 Dec 2026" in mail.text
    assert "Nights:       3" in mail.text
    assert "Guests:       2 adults" in mail.text
    assert "child" not in mail.text  # 0 children: not mentioned
    assert "RES-48213-1" in mail.html


def test_support_alert_quotes_the_guest_shortened():
    long_words = "Could we get two extra pillows? " * 20
    data = data_for(
        "support_alert",
        event(
            "message_received",
            context={**sample("message_received")["context"], "text": long_words},
        ),
    )
    assert len(data["text"]) <= 280 and data["text"].endswith("…")
    mail = TEMPLATES.render("support_alert", data)
    assert "Guest message from Ana Silva (RES-48213-1)" == mail.subject
    assert data["text"] in mail.text


@pytest.mark.parametrize(
    ("kind", "sample_name"),
    [
        ("welcome", "reservation_checked_in"),
        ("booking_confirmation", "reservation_created"),
        ("support_alert", "message_received"),
    ],
)
def test_sparse_context_renders_gracefully(kind, sample_name):
    ev = event(sample_name, context={"guestEmail": "x@example.com"}, pmsPropertyId=None)
    mail = TEMPLATES.render(kind, data_for(kind, ev))
    for part in (mail.subject, mail.text, mail.html):
        assert "None" not in part
        assert "{{" not in part and "Undefined" not in part
    assert mail.subject.strip() and mail.text.strip()
    assert " ," not in mail.text and "  ." not in mail.text


def test_html_is_escaped_and_text_is_not():
    mail = TEMPLATES.render("welcome", {"guest_name": "<script>x</script> & Co"})
    assert "&lt;script&gt;" in mail.html and "<script>" not in mail.html
    assert "<script>x</script> & Co" in mail.text


def test_dates_that_are_not_dates_are_shown_as_sent():
    mail = TEMPLATES.render("booking_confirmation", {"arrival": "next Tuesday"})
    assert "next Tuesday" in mail.text


def test_a_hotel_overrides_one_template(tmp_path):
    (tmp_path / "welcome.subject.txt").write_text("Bem-vindo, {{ guest_name }}!")
    templates = EmailTemplates(tmp_path)
    mail = templates.render("welcome", {"guest_name": "Ana"})
    assert mail.subject == "Bem-vindo, Ana!"
    assert "Welcome!" in mail.text  # the other parts stay built in


async def test_sendgrid_dynamic_template_gets_the_data_instead_of_content(tmp_path):
    with FakeService() as sendgrid:
        settings = make_settings(
            tmp_path,
            SENDGRID_API_KEY="SG.k",
            SENDGRID_HOST=sendgrid.url,
            SENDGRID_TEMPLATE_WELCOME="d-0123456789abcdef",
            PROPERTY_NAMES='{"PROP-ZRH-01": "Hotel Zürich"}',
        )
        checked_in = event("reservation_checked_in_seed_illustration")
        request = welcome_request(
            checked_in, guest_in_context(checked_in.context), "evt/welcome-email"
        )
        delivery = await ActivityEnvironment().run(EmailActivities(settings).send_email, request)
    assert delivery.status == "sent"
    mail = sendgrid.requests[0].json()
    assert mail["template_id"] == "d-0123456789abcdef"
    assert "content" not in mail
    data = mail["personalizations"][0]["dynamic_template_data"]
    assert data["guest_name"] == "Ana Silva"
    assert data["room_number"] == "412"
    assert data["property_name"] == "Hotel Zürich"


async def test_a_broken_override_fails_without_retry(tmp_path):
    (tmp_path / "welcome.txt").write_text("Hello {{ guest_name ")
    settings = make_settings(tmp_path, EMAIL_TEMPLATES_DIR=str(tmp_path))
    request = EmailRequest(key="k", kind="welcome", to="a@example.com")
    from temporalio.exceptions import ApplicationError

    with pytest.raises(ApplicationError) as raised:
        await ActivityEnvironment().run(EmailActivities(settings).send_email, request)
    assert raised.value.non_retryable
    assert "does not render" in raised.value.message


LANGUAGES = ("en", "de", "fr", "it")
# Every kind that any language has (`reactor new reaction --email` adds kinds): each
# language must have each of them.
KINDS = sorted(
    {
        p.name.removesuffix(".txt")
        for language in LANGUAGES
        for p in (BUILT_IN_TEMPLATES / language).glob("*.txt")
        if not p.name.endswith(".subject.txt")
    }
)
# The kinds the shipped reactions send.
SHIPPED_KINDS = {
    "welcome",
    "booking_confirmation",
    "support_alert",
    "housekeeping",
    "journey_pre_arrival",
    "journey_mid_stay",
    "journey_review_request",
    "journey_cancellation",
}
FULL = {
    "guest_name": "Ana Silva",
    "staff_name": "Ines",
    "room_number": "412",
    "reservation_id": "RES-1",
    "property_name": "Hotel Zürich",
    "arrival": "2026-12-10T14:00:00Z",
    "departure": "2026-12-13T10:00:00Z",
    "nights": 3,
    "adults": 2,
    "children": 1,
    "text": "Two extra pillows, please",
    "title": "Departure cleaning",
    "task_id": "T-1",
    "event_id": "e-1",
}


def test_every_language_has_every_kind_of_email():
    assert SHIPPED_KINDS <= set(KINDS)
    assert {p.name for p in BUILT_IN_TEMPLATES.iterdir()} == set(LANGUAGES)
    for language in LANGUAGES:
        shipped = {p.name for p in (BUILT_IN_TEMPLATES / language).iterdir()}
        assert shipped == {f"{k}.{part}" for k in KINDS for part in ("subject.txt", "txt", "html")}


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("sparse", [False, True])
def test_every_kind_renders_in_every_language(language, sparse):
    for kind in KINDS:
        mail = TEMPLATES.render(kind, {} if sparse else FULL, language, "Europe/Zurich")
        for part in (mail.subject, mail.text, mail.html):
            assert "None" not in part and "{{" not in part and "Undefined" not in part
        assert mail.subject.strip() and mail.text.strip()
        if not sparse and kind in ("welcome", "booking_confirmation"):
            assert "Ana Silva" in mail.subject + mail.text


def test_dates_are_written_for_the_language_in_the_property_zone():
    late = {"arrival": "2026-12-10T23:30:00Z"}  # already the 11th in Zurich and Auckland
    assert TEMPLATES.render("booking_confirmation", late, "en", "UTC").subject == (
        "Your booking is confirmed: Thu, 10 Dec 2026"
    )
    assert TEMPLATES.render("booking_confirmation", late, "en", "Pacific/Auckland").subject == (
        "Your booking is confirmed: Fri, 11 Dec 2026"
    )
    by_language = {
        lang: TEMPLATES.render("booking_confirmation", late, lang, "Europe/Zurich").subject
        for lang in ("de", "fr", "it")
    }
    assert by_language == {
        "de": "Ihre Buchung ist bestätigt: Fr., 11. Dez. 2026",
        "fr": "Votre réservation est confirmée : ven. 11 déc. 2026",
        "it": "La Sua prenotazione è confermata: ven 11 dic 2026",
    }


async def test_a_language_is_a_folder_and_unknown_ones_fall_back(tmp_path):
    (tmp_path / "pt").mkdir()
    (tmp_path / "pt" / "welcome.subject.txt").write_text("Bem-vindo, {{ guest_name }}!")
    (tmp_path / "pt" / "welcome.txt").write_text("Olá {{ guest_name }}")
    (tmp_path / "pt" / "welcome.html").write_text("<p>Olá {{ guest_name }}</p>")
    settings = make_settings(
        tmp_path,
        EMAIL_TEMPLATES_DIR=str(tmp_path),
        PROPERTY_LANGUAGES='{"PROP-ZRH-01": "it"}',
    )
    acts = EmailActivities(settings)

    def request(language, kind="welcome"):
        return EmailRequest(
            key="k",
            kind=kind,
            to="a@example.com",
            language=language,
            data={"property_id": "PROP-ZRH-01"},
        )

    assert acts.language_of(request("pt-BR")) == "pt"  # the hotel's own folder
    assert acts.language_of(request("pt", "booking_confirmation")) == "it"  # no pt of it
    assert acts.language_of(request("es")) == "it"  # the property's language
    assert acts.language_of(request("DE_ch")) == "de"
    other = request(None).model_copy(update={"data": {"property_id": "PROP-OTHER"}})
    assert acts.language_of(other) == "en"


async def test_sendgrid_templates_per_language_fall_back_to_the_kind(tmp_path):
    with FakeService() as sendgrid:
        settings = make_settings(
            tmp_path,
            SENDGRID_API_KEY="SG.k",
            SENDGRID_HOST=sendgrid.url,
            SENDGRID_TEMPLATE_WELCOME="d-any",
            SENDGRID_TEMPLATE_WELCOME_DE="d-german",
        )
        acts = EmailActivities(settings)
        for language in ("de", "fr"):
            request = EmailRequest(key=f"k-{language}", kind="welcome", to="a@example.com")
            request.language = language
            await ActivityEnvironment().run(acts.send_email, request)
    sent = [r.json() for r in sendgrid.requests]
    assert [m["template_id"] for m in sent] == ["d-german", "d-any"]
    assert [m["personalizations"][0]["dynamic_template_data"]["language"] for m in sent] == [
        "de",
        "fr",
    ]
