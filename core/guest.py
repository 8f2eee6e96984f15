"""A reservation's guest, as reactor learns it: from an event, a journey or a profile.

The platform spells a guest as RESERVATION_CREATED's ``primaryGuest`` does
(``firstName``, ``lastName``, ``email``, ``phone``); a LIKE MAGIC profile is read
the same way, with its language in ``preferredLanguage`` or ``language``. The
seed's illustrations (``guestEmail``, ``guestName``) are read too. Missing
fields are normal.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


def _text(value: Any) -> str | None:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        shown = str(value).strip()
        return shown or None
    return None


class Guest(BaseModel):
    """What reactor knows of a guest; every field may be unknown."""

    name: str | None = None
    email: str | None = None
    phone: str | None = None
    # As the profile spells it ("de", "de-CH", "fr_CH"); the email activity picks
    # the templates' language from it.
    language: str | None = None
    profile_id: str | None = None

    def merged(self, other: Guest | None) -> Guest:
        """This guest, with what it does not know taken from ``other``."""
        if other is None:
            return self
        mine = self.model_dump(exclude_none=True)
        return other.model_copy(update=mine)


def guest_fields(fields: dict[str, Any]) -> Guest:
    """A guest from a flat object spelt like ``primaryGuest`` or a profile."""
    first, last = _text(fields.get("firstName")), _text(fields.get("lastName"))
    name = " ".join(p for p in (first, last) if p) or _text(fields.get("name"))
    return Guest(
        name=name,
        email=_text(fields.get("email")),
        phone=_text(fields.get("phone")),
        language=_text(fields.get("preferredLanguage")) or _text(fields.get("language")),
    )


def guest_in_context(context: dict[str, Any]) -> Guest:
    """The guest an event's context names: ``guestEmail`` / ``guestName``, else
    ``primaryGuest``; ``userProfileId`` as the profile."""
    primary = context.get("primaryGuest")
    guest = guest_fields(primary) if isinstance(primary, dict) else Guest()
    return Guest(
        name=_text(context.get("guestName")) or guest.name,
        email=_text(context.get("guestEmail")) or guest.email,
        phone=_text(context.get("guestPhone")) or guest.phone,
        language=guest.language,
        profile_id=_text(context.get("userProfileId")),
    )
