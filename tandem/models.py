"""Imports every table so that `Base.metadata` is complete (Alembic, tests)."""

from tandem.business import models as business_models
from tandem.canned import models as canned_models  # noqa: F401
from tandem.conversations import models as conversation_models
from tandem.db import Base
from tandem.staff import models as staff_models
from tandem.tickets import models as ticket_models  # noqa: F401

__all__ = ["Base", "business_models", "conversation_models", "staff_models"]
