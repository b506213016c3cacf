"""Admin: create, list and revoke API keys, and adopt tenant-less sessions into a tenant (``aws lambda invoke`` under
IAM; locally ``make key``, ``make adopt-sessions``). No HTTP route."""

from motorhead.composition.access import api_keys, session_adopter
from motorhead.entrypoints.admin.handler import admin_handler
from motorhead.settings import get_settings

handler = admin_handler(lambda: api_keys(get_settings()), lambda: session_adopter(get_settings()))
