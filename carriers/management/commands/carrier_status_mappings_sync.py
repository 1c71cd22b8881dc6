from django.core.management.base import BaseCommand

from carriers.adapters import adapter_names
from carriers.services import status_mappings_sync


class Command(BaseCommand):
    help = "Insert each carrier adapter's default status mappings the database does not have yet."

    def add_arguments(self, parser):
        parser.add_argument("carriers", nargs="*", help="adapter names (default: every registered one)")

    def handle(self, *args, carriers, **options):
        for carrier in carriers or adapter_names():
            added = status_mappings_sync(carrier)
            self.stdout.write(f"{carrier}: {added} default mappings added")
