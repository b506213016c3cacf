"""Admin: create, list and revoke API keys (``aws lambda invoke`` under IAM; locally ``make key``). No HTTP route."""

from motorhead.composition.access import api_keys
from motorhead.entrypoints.admin.handler import admin_handler
from motorhead.settings import get_settings

handler = admin_handler(lambda: api_keys(get_settings()))
