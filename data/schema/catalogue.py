"""Who handles what: departments, categories with their time limits and Open311 attributes, the responsibility list, grid workers and duty lists."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Integer,
    SmallInteger,
    String,
    Table,
    Text,
    false,
    text,
    true,
)

from data.schema.base import metadata

departments = Table(
    "departments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("code", String(64), nullable=False, unique=True),
    Column("name_en", String(200), nullable=False),
    Column("name_zh", String(200), nullable=False),
    Column("kind", String(32), nullable=False, server_default="department"),
    Column("webhook_url", Text, nullable=True),
    Column("active", Boolean, nullable=False, server_default=true()),
    # The key its webhooks are signed with (HMAC-SHA256; migration 0004, see data/incidents/webhooks.py).
    Column("webhook_secret", Text, nullable=True),
)

categories = Table(
    "categories",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("code", String(64), nullable=False, unique=True),
    Column("name_en", String(200), nullable=False),
    Column("name_zh", String(200), nullable=False),
    Column("sector", String(32), nullable=False),
    Column("department_id", Integer, ForeignKey("departments.id"), nullable=False),
    Column("grid_worker_ok", Boolean, nullable=False, server_default=false()),
    Column("active", Boolean, nullable=False, server_default=true()),
    CheckConstraint("sector IN ('party','economy','livelihood','safety')", name="sector"),
)

# Acknowledge and handling limits per category and priority, in minutes.
category_limits = Table(
    "category_limits",
    metadata,
    Column("category_id", Integer, ForeignKey("categories.id"), primary_key=True),
    Column("priority", SmallInteger, primary_key=True),
    Column("ack_minutes", Integer, nullable=False),
    Column("handle_minutes", Integer, nullable=False),
)

workers = Table(
    "workers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("code", String(64), nullable=False, unique=True),
    Column("name_en", String(200), nullable=False),
    Column("name_zh", String(200), nullable=False),
    Column("grid_id", Integer, ForeignKey("units.id"), nullable=False, index=True),
    Column("role", String(32), nullable=False, server_default="full_time"),
    Column("phone", String(32), nullable=True),
    Column("active", Boolean, nullable=False, server_default=true()),
)

# A grid worker's duty list (职责清单): the categories that may be pushed down to them.
worker_duties = Table(
    "worker_duties",
    metadata,
    Column("worker_id", Integer, ForeignKey("workers.id"), primary_key=True),
    Column("category_id", Integer, ForeignKey("categories.id"), primary_key=True),
)

# --- the intake API (migration 0003) -----------------------------------------------------------

# Open311 service attributes: the extra questions a report of a category answers (service definitions).
category_attributes = Table(
    "category_attributes",
    metadata,
    Column("category_id", Integer, ForeignKey("categories.id"), primary_key=True),
    Column("code", String(64), primary_key=True),
    Column("datatype", String(16), nullable=False),
    Column("required", Boolean, nullable=False, server_default=false()),
    Column("variable", Boolean, nullable=False, server_default=true()),
    Column("description", Text, nullable=False),  # the question asked
    Column("datatype_description", Text, nullable=True),
    Column("position", Integer, nullable=False, server_default=text("0")),
    Column("value_list", JSON, nullable=True),  # [{"key": ..., "name": ...}] for the list datatypes
    CheckConstraint("datatype IN ('string','number','datetime','text','singlevaluelist','multivaluelist')", name="datatype"),
)

# --- one-click dispatch and reach (migration 0004) ----------------------------------------------

# The responsibility list (职责清单) per district: who handles a category there, overriding the
# category's own department (categories.department_id) in that district.
category_district_departments = Table(
    "category_district_departments",
    metadata,
    Column("category_id", Integer, ForeignKey("categories.id"), primary_key=True),
    Column("district_id", Integer, ForeignKey("units.id"), primary_key=True),
    Column("department_id", Integer, ForeignKey("departments.id"), nullable=False),
)
