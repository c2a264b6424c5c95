"""Administration commands: `python app.py admin user|department|category|responsibility|duty|log|signins ...`, every change audited.

Each command writes through data/accounts/admin/, so the admin audit log (`admin log`) records it with
the actor `cli:<name>` (`--actor`, default: the operating-system user running the command).
"""

from __future__ import annotations

import getpass
import json
import os

import click

from dashboard.commands import audit, command_store


def cli_actor(name: str | None) -> str:
    """The audit log's actor of a command: 'cli:' and --actor, else the OS user."""
    if not name:
        try:
            name = getpass.getuser()
        except (KeyError, OSError):  # no passwd entry (some containers): say so rather than guess
            name = os.environ.get("USER") or "unknown"
    return f"cli:{name.strip()}"


def actor_option(command):
    """--actor on a command that changes something: who the audit log names."""
    return click.option("--actor", default=None, help="Who makes the change, for the audit log (default: the OS user).")(command)


def table(header: tuple[str, ...], rows: list[tuple]) -> None:
    """Print rows as aligned columns under a header."""
    cells = [tuple("-" if v is None else str(v) for v in row) for row in rows]
    widths = [max(len(r[i]) for r in (header, *cells)) for i in range(len(header))]
    for row in (header, *cells):
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _write(change):
    """Run change(conn) in one transaction of the configured store; its answer."""
    with command_store() as engine, engine.begin() as conn:
        return change(conn)


def _read(query):
    from data import store

    with command_store() as engine, store.reading(engine) as conn:
        return query(conn)


@click.group("admin")
def admin_group() -> None:
    """Administration: users, departments, categories and time limits, responsibility and duty lists; all audited."""


# --- users -------------------------------------------------------------------------------------


@admin_group.group("user")
def user() -> None:
    """User accounts: role, jurisdiction (unit code, or 'city'), department, password, active."""


@user.command("list")
def user_list() -> None:
    """Every user: name, role, jurisdiction, department, active."""
    from data.accounts.admin.users import list_users

    users = _read(list_users)
    table(
        ("user", "name", "role", "jurisdiction", "department", "active"),
        [
            (
                u["username"],
                u["display_name"],
                u["role"],
                u["unit_code"] or "city",
                u["department_code"],
                "yes" if u["active"] else "no",
            )
            for u in users
        ],
    )


@user.command("create")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice(["viewer", "dispatcher", "department", "leader", "admin"]))
@click.option("--unit", "unit_code", default=None, help="Jurisdiction: a unit code (default: the whole city).")
@click.option("--department", "department_code", default=None, help="Department code (required with --role department).")
@click.option("--name", "display_name", default=None, help="Display name.")
@click.password_option("--password", help="The password (asked for when not given).")
@actor_option
def user_create(username, role, unit_code, department_code, display_name, password, actor) -> None:
    """Create USERNAME with a role, a jurisdiction and (for department users) a department."""
    from data.accounts.admin.users import create_user

    created = _write(
        lambda conn: create_user(
            conn,
            cli_actor(actor),
            username,
            password,
            role,
            unit_code=unit_code,
            department_code=department_code,
            display_name=display_name,
        )
    )
    click.echo(f"created user {created['username']} ({created['role']}, {created['unit_code'] or 'city'})")


@user.command("set")
@click.argument("username")
@click.option("--role", default=None, type=click.Choice(["viewer", "dispatcher", "department", "leader", "admin"]))
@click.option("--unit", "unit_code", default=None, help="New jurisdiction: a unit code, or 'city'.")
@click.option("--department", "department_code", default=None, help="Department code ('' for none).")
@click.option("--name", "display_name", default=None, help="New display name.")
@actor_option
def user_set(username, role, unit_code, department_code, display_name, actor) -> None:
    """Change USERNAME's role, jurisdiction, department or display name."""
    from data.accounts.admin.users import update_user

    changes = {
        k: v
        for k, v in {
            "role": role,
            "unit_code": unit_code,
            "department_code": department_code,
            "display_name": display_name,
        }.items()
        if v is not None
    }
    if not changes:
        raise click.UsageError("say what to change: --role, --unit, --department or --name")
    updated = _write(lambda conn: update_user(conn, cli_actor(actor), username, **changes))
    click.echo(
        f"{updated['username']}: {updated['role']}, {updated['unit_code'] or 'city'}, department {updated['department_code'] or '-'}"
    )


@user.command("deactivate")
@click.argument("username")
@actor_option
def user_deactivate(username, actor) -> None:
    """Switch USERNAME off: they cannot sign in, and their open sessions end."""
    from data.accounts.admin.users import update_user

    _write(lambda conn: update_user(conn, cli_actor(actor), username, active=False))
    click.echo(f"{username}: deactivated")


@user.command("activate")
@click.argument("username")
@actor_option
def user_activate(username, actor) -> None:
    """Switch USERNAME back on."""
    from data.accounts.admin.users import update_user

    _write(lambda conn: update_user(conn, cli_actor(actor), username, active=True))
    click.echo(f"{username}: active")


@user.command("reset-password")
@click.argument("username")
@click.password_option("--password", help="The new password (asked for when not given).")
@actor_option
def user_reset_password(username, password, actor) -> None:
    """Give USERNAME a new password (clears a lockout, ends their sessions)."""
    from data.accounts.admin.users import reset_password

    _write(lambda conn: reset_password(conn, cli_actor(actor), username, password))
    click.echo(f"{username}: new password set")


# --- departments -------------------------------------------------------------------------------


@admin_group.group("department")
def department() -> None:
    """Departments (部门): create, rename, (de)activate. Webhooks: `python app.py webhook`."""


@department.command("list")
def department_list() -> None:
    """Every department: code, names, kind, active, webhook URL."""
    from data.accounts.admin.departments import list_departments

    rows = _read(list_departments)
    table(
        ("code", "name", "名称", "kind", "active", "webhook"),
        [(d["code"], d["name_en"], d["name_zh"], d["kind"], "yes" if d["active"] else "no", d["webhook_url"]) for d in rows],
    )


@department.command("create")
@click.argument("code")
@click.option("--name", "name_en", required=True, help="English name.")
@click.option("--name-zh", required=True, help="Chinese name (中文名称).")
@click.option("--kind", default="department", show_default=True, type=click.Choice(["department", "utility", "worker"]))
@actor_option
def department_create(code, name_en, name_zh, kind, actor) -> None:
    """Create the department CODE."""
    from data.accounts.admin.departments import create_department

    _write(lambda conn: create_department(conn, cli_actor(actor), code, name_en, name_zh, kind))
    click.echo(f"created department {code}")


@department.command("rename")
@click.argument("code")
@click.option("--name", "name_en", default=None, help="New English name.")
@click.option("--name-zh", default=None, help="New Chinese name.")
@actor_option
def department_rename(code, name_en, name_zh, actor) -> None:
    """Rename the department CODE."""
    from data.accounts.admin.departments import update_department

    if name_en is None and name_zh is None:
        raise click.UsageError("give --name and/or --name-zh")
    done = _write(lambda conn: update_department(conn, cli_actor(actor), code, name_en=name_en, name_zh=name_zh))
    click.echo(f"{code}: {done['name_en']} / {done['name_zh']}")


@department.command("deactivate")
@click.argument("code")
@actor_option
def department_deactivate(code, actor) -> None:
    """Switch CODE off (refused while the responsibility list still names it)."""
    from data.accounts.admin.departments import update_department

    _write(lambda conn: update_department(conn, cli_actor(actor), code, active=False))
    click.echo(f"{code}: deactivated")


@department.command("activate")
@click.argument("code")
@actor_option
def department_activate(code, actor) -> None:
    """Switch CODE back on."""
    from data.accounts.admin.departments import update_department

    _write(lambda conn: update_department(conn, cli_actor(actor), code, active=True))
    click.echo(f"{code}: active")


# --- categories and their time limits ----------------------------------------------------------


@admin_group.group("category")
def category() -> None:
    """Categories (事项类别) and their acknowledge / handling limits per priority."""


@category.command("list")
def category_list() -> None:
    """Every category: code, sector, department, grid workers allowed, limits (ack/handle minutes) per priority."""
    from data.accounts.admin.categories import list_categories

    rows = _read(list_categories)
    table(
        ("code", "name", "sector", "department", "grid", "active", "P1", "P2", "P3"),
        [
            (
                c["code"],
                c["name_en"],
                c["sector"],
                c["department"],
                "yes" if c["grid_worker_ok"] else "no",
                "yes" if c["active"] else "no",
                *(f"{c[f'ack_{p}']}/{c[f'handle_{p}']}" for p in (1, 2, 3)),
            )
            for c in rows
        ],
    )


@category.command("create")
@click.argument("code")
@click.option("--name", "name_en", required=True)
@click.option("--name-zh", required=True)
@click.option("--sector", required=True, type=click.Choice(["party", "economy", "livelihood", "safety"]))
@click.option("--department", "department_code", required=True, help="The department that handles it city-wide.")
@click.option("--grid-workers/--no-grid-workers", default=False, help="Whether grid workers may take it (duty lists).")
@actor_option
def category_create(code, name_en, name_zh, sector, department_code, grid_workers, actor) -> None:
    """Create the category CODE (limits default until set with `admin category limits`)."""
    from data.accounts.admin.categories import create_category

    _write(
        lambda conn: create_category(
            conn, cli_actor(actor), code, name_en, name_zh, sector, department_code, grid_worker_ok=grid_workers
        )
    )
    click.echo(f"created category {code}")


@category.command("set")
@click.argument("code")
@click.option("--name", "name_en", default=None)
@click.option("--name-zh", default=None)
@click.option("--sector", default=None, type=click.Choice(["party", "economy", "livelihood", "safety"]))
@click.option("--grid-workers/--no-grid-workers", default=None, help="Whether grid workers may take it.")
@click.option("--active/--inactive", default=None)
@actor_option
def category_set(code, name_en, name_zh, sector, grid_workers, active, actor) -> None:
    """Change the category CODE (its department: `admin responsibility`)."""
    from data.accounts.admin.categories import update_category

    done = _write(
        lambda conn: update_category(
            conn,
            cli_actor(actor),
            code,
            name_en=name_en,
            name_zh=name_zh,
            sector=sector,
            grid_worker_ok=grid_workers,
            active=active,
        )
    )
    click.echo(f"{code}: {json.dumps(done, ensure_ascii=False)}")


@category.command("limits")
@click.argument("code")
@click.option("--priority", required=True, type=click.IntRange(1, 3), help="1 urgent, 2 high, 3 normal.")
@click.option("--ack", "ack_minutes", required=True, type=int, help="Minutes to acknowledge after dispatch.")
@click.option("--handle", "handle_minutes", required=True, type=int, help="Minutes to handle after dispatch.")
@actor_option
def category_limits(code, priority, ack_minutes, handle_minutes, actor) -> None:
    """Set CODE's time limits at one priority (incidents dispatched from now on)."""
    from data.accounts.admin.categories import set_category_limits

    _write(lambda conn: set_category_limits(conn, cli_actor(actor), code, priority, ack_minutes, handle_minutes))
    click.echo(f"{code} priority {priority}: acknowledge within {ack_minutes} min, handle within {handle_minutes} min")


# --- responsibility list and duty lists --------------------------------------------------------


@admin_group.command("responsibility")
@click.argument("category_code")
@click.argument("department_code", required=False)
@click.option("--district", "district_code", default=None, help="Only in this district (default: city-wide).")
@actor_option
def responsibility(category_code, department_code, district_code, actor) -> None:
    """Name the DEPARTMENT that handles CATEGORY (city-wide, or --district); no DEPARTMENT clears a district entry."""
    from data.accounts.admin.responsibility import set_responsibility

    _write(lambda conn: set_responsibility(conn, cli_actor(actor), category_code, district_code, department_code))
    where = f"in {district_code}" if district_code else "city-wide"
    click.echo(f"{category_code} {where}: {department_code or 'the city-wide department'}")


@admin_group.command("responsibility-list")
def responsibility_list() -> None:
    """The responsibility list (职责清单): each category's department, city-wide and per district."""
    from data.accounts.admin import responsibility as admin_responsibility

    rows = _read(admin_responsibility.responsibility_list)
    table(("category", "district", "department"), [(r["category"], r["district"] or "city", r["department"]) for r in rows])


@admin_group.group("duty")
def duty() -> None:
    """Grid workers' duty lists (网格员职责清单): the categories that may be pushed down to them."""


@duty.command("list")
@click.option("--search", default=None, help="Only workers whose code, name or grid contains this.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 5000))
def duty_list(search, limit) -> None:
    """Grid workers with their grid and duty list."""
    from data.accounts.admin.duties import list_workers

    rows = _read(lambda conn: list_workers(conn, search=search, limit=limit))
    table(
        ("worker", "name", "grid", "duties"), [(w["code"], w["name_en"], w["grid"], " ".join(w["duties"]) or "-") for w in rows]
    )


@duty.command("set")
@click.argument("worker_code")
@click.argument("category_codes", nargs=-1)
@actor_option
def duty_set(worker_code, category_codes, actor) -> None:
    """Replace WORKER's duty list with CATEGORY codes (none: an empty list)."""
    from data.accounts.admin.duties import set_worker_duties

    done = _write(lambda conn: set_worker_duties(conn, cli_actor(actor), worker_code, list(category_codes)))
    click.echo(f"{worker_code}: {' '.join(done) or 'no duties'}")


# --- the audit logs (dashboard/commands/audit.py: date ranges and CSV) -------------------------------

admin_group.add_command(audit.log_command)
admin_group.add_command(audit.signins_command)

COMMANDS = [admin_group]
