"""The configuration file ``crm.toml``, validated with jsonschema.

.. code-block:: toml

    [database]
    url = "sqlite:///crm.db"          # CRM_DATABASE_URL overrides it

Relative paths written in the file (the SQLite file of ``[database] url``,
``attributes_schema``, and plugin paths through :meth:`Config.resolve_path`)
resolve against the directory of the file, not the current directory.

    [customers]
    attributes_schema = "attributes.schema.json"   # or an inline table
    default_region = "CN"             # national phone numbers are read as CN (the default);
                                      # "ZZ": none, only +/00 international forms

    [limits]                          # per JSON document: attributes, payload, items
    json_max_depth = 32
    json_max_bytes = 65536

    [accounts]                        # crmcore.services.accounts (docs/accounts.md)
    contact_roles = ["decision_maker", "influencer", "user"]
    link_types = ["referred_by", "partner_of"]
    team_roles = ["account_manager", "pre_sales", "service"]
    team_write_roles = ["account_manager"]   # team roles that may also write
    weak_score = 40                   # 0-100: a latest relationship score below it ...
    falling_drop = 15                 # ... or a fall of this many points is a churn signal

    [pool]                            # crmcore.services.pool (docs/pool.md)
    visible_fields = ["name", "company_name", "industry", "stage"]
    assignment = "round_robin"        # or "weighted" (weights = {alice = 2}) or "none"
    team = ["alice", "bob"]
    recycle_after_days = 90

    [plugins]
    disabled = ["loyalty"]

    [plugins.surveys]                 # validated against the plugin's schema
    low_score_threshold = 6
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attrs import field, frozen

from crmcore.errors import ConfigError, ValidationError
from crmcore.model.accounts import CODE_PATTERN, AccountSettings
from crmcore.model.identity import DEFAULT_REGION, check_region
from crmcore.model.limits import DEFAULT_JSON_MAX_BYTES, DEFAULT_JSON_MAX_DEPTH, JsonLimits
from crmcore.model.pool import ASSIGNMENTS, PoolSettings
from crmcore.storage.urls import DEFAULT_URL

if TYPE_CHECKING:
    import jsonschema

#: Environment variable that overrides ``[database] url``.
DATABASE_URL_ENV = "CRM_DATABASE_URL"

_CODES = {
    "type": "array",
    "items": {"type": "string", "pattern": CODE_PATTERN},
    "uniqueItems": True,
}

#: JSON Schema of ``crm.toml`` itself.
CONFIG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "database": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"url": {"type": "string", "minLength": 1}},
        },
        "customers": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "attributes_schema": {"type": ["string", "object"]},
                "default_region": {"type": "string", "pattern": "^[A-Za-z]{2}$"},
            },
        },
        "security": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "encryption": {"type": "boolean"},
                "encrypted_fields": {
                    "type": "array",
                    "items": {"type": "string"},
                    "uniqueItems": True,
                },
                "unreadable": {"enum": ["skip", "fail"]},
            },
        },
        "access": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"allow_role_switch": {"type": "boolean"}},
        },
        "limits": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "json_max_depth": {"type": "integer", "minimum": 1, "maximum": 200},
                "json_max_bytes": {"type": "integer", "minimum": 64, "maximum": 2**30},
            },
        },
        "accounts": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "contact_roles": {**_CODES, "minItems": 1},
                "link_types": {**_CODES, "minItems": 1},
                "team_roles": {**_CODES, "minItems": 1},
                "team_write_roles": _CODES,
                "weak_score": {"type": "number", "minimum": 0, "maximum": 100},
                "falling_drop": {"type": "number", "exclusiveMinimum": 0, "maximum": 100},
            },
        },
        "pool": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "visible_fields": {"type": "array", "items": {"type": "string"}},
                "assignment": {"enum": list(ASSIGNMENTS)},
                "team": {"type": "array", "items": {"type": "string", "minLength": 1}},
                "weights": {"type": "object", "additionalProperties": {"type": "integer"}},
                "recycle_after_days": {"type": "integer", "minimum": 1},
            },
        },
        "plugins": {
            "type": "object",
            "properties": {
                "disabled": {"type": "array", "items": {"type": "string"}, "uniqueItems": True}
            },
            "additionalProperties": {"type": "object"},
        },
    },
}


def describe_schema_error(error: jsonschema.ValidationError, prefix: str = "") -> str:
    """One line naming the field (dotted path) and what is wrong with it."""
    path = ".".join(str(p) for p in error.absolute_path)
    where = ".".join(p for p in (prefix, path) if p) or "(top level)"
    return f"{where}: {error.message}"


@frozen
class Config:
    """A loaded, validated configuration. Build it with :func:`load_config` or directly."""

    database_url: str = DEFAULT_URL
    disabled_plugins: tuple[str, ...] = ()
    plugin_sections: Mapping[str, Mapping[str, Any]] = field(factory=dict)
    attributes_schema: Mapping[str, Any] | None = None
    source: Path | None = None
    encryption: bool | None = None
    encrypted_fields: tuple[str, ...] | None = None
    #: What listings do with a customer whose sealed fields cannot be opened: "skip" or "fail".
    unreadable: str = "skip"
    #: Nesting depth and size allowed for each JSON document (``[limits]``).
    json_limits: JsonLimits = field(factory=JsonLimits)
    #: Whether ``crm --user/--role`` may act as another user (``[access] allow_role_switch``).
    allow_role_switch: bool = True
    #: Contact roles, link types, team roles and score thresholds (``[accounts]``).
    accounts: AccountSettings = field(factory=AccountSettings)
    #: Region national phone numbers are read in (``[customers] default_region``; "ZZ": none).
    default_region: str = DEFAULT_REGION
    #: What agents see of unowned customers, assignment of new ones, recycling (``[pool]``).
    pool: PoolSettings = field(factory=PoolSettings)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: Path | None = None) -> Config:
        """Validate a parsed ``crm.toml`` and build a Config.

        Relative paths in it resolve against the directory of ``source``.
        """
        where = f"{source}: " if source else ""
        if data:  # an empty mapping (no crm.toml) is valid: `crm --help` imports no jsonschema
            import jsonschema

            errors = sorted(
                jsonschema.Draft202012Validator(CONFIG_SCHEMA).iter_errors(data),
                key=lambda e: list(e.absolute_path),
            )
            if errors:
                raise ConfigError(where + describe_schema_error(errors[0]))
        plugins = dict(data.get("plugins", {}))
        disabled = tuple(plugins.pop("disabled", ()))
        schema = data.get("customers", {}).get("attributes_schema")
        if isinstance(schema, str):
            schema = _load_schema_file(Path(schema), source)
        if schema is not None:
            import jsonschema

            try:
                jsonschema.Draft202012Validator.check_schema(schema)
            except jsonschema.SchemaError as exc:
                raise ConfigError(
                    f"{where}customers.attributes_schema is not a valid JSON Schema: {exc.message}"
                ) from None
        url = os.environ.get(DATABASE_URL_ENV) or _relative_to(
            data.get("database", {}).get("url", DEFAULT_URL), source
        )
        security = data.get("security", {})
        fields = security.get("encrypted_fields")
        limits = data.get("limits", {})
        try:
            accounts = AccountSettings(**data.get("accounts", {}))
        except ValidationError as exc:
            raise ConfigError(f"{where}{exc}") from None
        try:
            pool = PoolSettings(**data.get("pool", {}))
        except ValidationError as exc:
            raise ConfigError(f"{where}{exc}") from None
        try:
            region = check_region(data.get("customers", {}).get("default_region"))
        except ValueError as exc:
            raise ConfigError(f"{where}customers.default_region: {exc}") from None
        return cls(
            database_url=url,
            disabled_plugins=disabled,
            plugin_sections=plugins,
            attributes_schema=schema,
            source=source,
            encryption=security.get("encryption"),
            encrypted_fields=tuple(fields) if fields is not None else None,
            unreadable=security.get("unreadable", "skip"),
            json_limits=JsonLimits(
                limits.get("json_max_depth", DEFAULT_JSON_MAX_DEPTH),
                limits.get("json_max_bytes", DEFAULT_JSON_MAX_BYTES),
            ),
            allow_role_switch=data.get("access", {}).get("allow_role_switch", True),
            accounts=accounts,
            default_region=region,
            pool=pool,
        )

    def resolve_path(self, path: str | Path) -> Path:
        """A path written in this configuration, resolved against the file's directory.

        Absolute paths, and every path of a configuration not read from a
        file, are returned as they are. Plugins use this for file paths in
        their ``[plugins.<name>]`` section.
        """
        path = Path(path)
        if path.is_absolute() or self.source is None:
            return path
        return self.source.parent / path


def _relative_to(url: str, source: Path | None) -> str:
    """A SQLite URL (or bare file path) written in ``source``, its path resolved against it."""
    if source is None or source.parent == Path("."):
        return url
    if "://" not in url.strip():
        path = Path(url.strip())
        return url if path.is_absolute() else str(source.parent / path)
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:  # reported when the engine is made
        return url
    database = parsed.database
    if (
        parsed.get_backend_name() != "sqlite"
        or not database
        or database == ":memory:"
        or database.startswith("file:")
        or Path(database).is_absolute()
    ):
        return url
    return parsed.set(database=str(source.parent / database)).render_as_string(hide_password=False)


def _load_schema_file(path: Path, source: Path | None) -> dict[str, Any]:
    if not path.is_absolute() and source is not None:
        path = source.parent / path
    try:
        loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(
            f"customers.attributes_schema: cannot read {path}: {exc.strerror}"
        ) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"customers.attributes_schema: {path} is not JSON: {exc}") from None
    return loaded


def load_config(path: str | Path) -> Config:
    """Read and validate a ``crm.toml`` file."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return Config.from_mapping(data, source=path)


def default_config(database_url: str | None = None) -> Config:
    """Configuration when no file is given: ``./crm.toml`` if present, else defaults."""
    local = Path("crm.toml")
    config = load_config(local) if local.is_file() else Config.from_mapping({})
    if database_url is not None:
        from attrs import evolve

        config = evolve(config, database_url=database_url)
    return config
