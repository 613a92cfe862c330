"""Print the trail's public key (PEM SubjectPublicKeyInfo) for verifying without Handrail."""

from django.core.management.base import BaseCommand

from catalog.audit.signing import key_id, public_key_pem, signing_key


class Command(BaseCommand):
    help = "Print the Ed25519 public key that signs checkpoints and attestations."

    def handle(self, *args, **options):
        self.stdout.write(public_key_pem(), ending="")
        self.stderr.write(f"key id {key_id(signing_key().public_key())}")
