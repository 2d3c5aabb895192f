"""Idempotent demo data for `make run`: CRM records, a demo admin and a few demo keys.

The demo admin has a published password, so the command refuses to run with DEBUG off unless
``--force`` is given, and it never changes an existing user: a second run keeps the admin's
password (and so everyone's sessions). The login and the keys are printed last, after the
CRM data summary, so they are what a developer sees.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import check_password
from django.contrib.auth.models import Group, Permission
from django.core.management.base import CommandError
from django.db import transaction

from audit.actors import Actor
from crm.models import Contact, Lead, Opportunity
from crm.modules import MODULES
from crm_keys import cli
from keys import services
from keys.conf import key_settings
from keys.models import APIKey
from keys.scopes import PRESETS

FIRST = [
    "Ada",
    "Grace",
    "Alan",
    "Linus",
    "Margaret",
    "Dennis",
    "Barbara",
    "Ken",
    "Frances",
    "Tim",
    "Radia",
    "Edsger",
    "Hedy",
    "John",
    "Katherine",
    "Guido",
    "Sophie",
    "Bjarne",
    "Anita",
    "Niklaus",
]
LAST = [
    "Lovelace",
    "Hopper",
    "Turing",
    "Torvalds",
    "Hamilton",
    "Ritchie",
    "Liskov",
    "Thompson",
    "Allen",
    "Berners-Lee",
    "Perlman",
    "Dijkstra",
    "Lamarr",
    "McCarthy",
    "Johnson",
    "van Rossum",
    "Wilson",
    "Stroustrup",
    "Borg",
    "Wirth",
]
COMPANIES = [
    "Acme Corp",
    "Globex",
    "Initech",
    "Umbrella Health",
    "Stark Industries",
    "Wayne Enterprises",
    "Hooli",
    "Pied Piper",
    "Soylent",
    "Tyrell",
    "Cyberdyne",
    "Wonka Foods",
    "Vandelay Imports",
    "Massive Dynamic",
    "Aperture Labs",
]
CITIES = [
    ("Berlin", "Germany"),
    ("Lisbon", "Portugal"),
    ("Austin", "USA"),
    ("Toronto", "Canada"),
    ("Melbourne", "Australia"),
    ("Pune", "India"),
    ("Nairobi", "Kenya"),
    ("Dublin", "Ireland"),
]

DEMO_USERNAME = "admin"
DEMO_PASSWORD = "intellicon-demo"  # noqa: S105 - a local demo login, printed on purpose
DEMO_KEYS = [
    (
        "Website Form Integration (demo)",
        "website-form",
        "Creates contacts from the website's contact form.",
    ),
    ("BI Tool Access (demo)", "bi-tool", "Read-only reporting: view and export every module."),
    ("Marketing Automation (demo)", "marketing", "Syncs leads with the marketing platform."),
]


DEMO_ROLES = {
    "Sales": {"contacts": ["view", "create", "edit"], "leads": ["view", "create", "edit"]},
    "Analysts": {m: ["view", "export"] for m in MODULES},
}


class Command(cli.Command):
    help = (
        "Load demo CRM data, a demo admin and demo API keys (safe to run again; never changes "
        "an existing user). Refuses to run with DEBUG off unless --force is given."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--contacts", type=int, default=200)
        parser.add_argument(
            "--force",
            action="store_true",
            help="run even with DEBUG off (creates an admin with a published password)",
        )
        parser.add_argument(
            "--site-url",
            default="",
            help="where the app is served, for the printed links (default: SITE_URL)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG and not options["force"]:
            raise CommandError(
                "seed_demo creates an admin with a published password and demo keys; it "
                "refuses to run with DEBUG off. It is for `make run`. Pass --force to load the "
                "demo data anyway."
            )
        site = (options["site_url"] or key_settings.SITE_URL or "http://127.0.0.1:8000").rstrip("/")
        # Printed inside the transaction: demo keys nobody could see are not created.
        with transaction.atomic():
            rng = random.Random(20261126)
            created = self._crm(rng, options["contacts"])
            login = self._admin(site)
            self._roles()
            keys = self._keys(site)
            summary = (
                f"CRM data: {Contact.objects.count()} contacts, {Lead.objects.count()} leads, "
                f"{Opportunity.objects.count()} opportunities"
                + (" (created now)" if created else "")
            )
            self.deliver("\n".join([summary, *login, *keys]), undone="no demo data was loaded")

    def _crm(self, rng: random.Random, n_contacts: int) -> bool:
        if Contact.objects.exists():
            return False
        contacts = []
        for i in range(n_contacts):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            city, country = rng.choice(CITIES)
            company = rng.choice(COMPANIES)
            contacts.append(
                Contact(
                    first_name=first,
                    last_name=last,
                    company=company,
                    city=city,
                    country=country,
                    email=f"{first}.{last}.{i}@{company.split()[0].lower()}.example".replace(
                        " ", ""
                    ).lower(),
                    phone=f"+1-555-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}",
                    title=rng.choice(
                        ["CEO", "CTO", "Head of Sales", "Engineer", "Buyer", "Analyst"]
                    ),
                )
            )
        contacts = Contact.objects.bulk_create(contacts)
        leads = Lead.objects.bulk_create(
            [
                Lead(
                    first_name=rng.choice(FIRST),
                    last_name=rng.choice(LAST),
                    company=rng.choice(COMPANIES),
                    email=f"lead{i}@example.com",
                    source=rng.choice(Lead.Source.values),
                    status=rng.choice(Lead.Status.values),
                    estimated_value=Decimal(rng.randint(5, 500) * 100),
                    contact=rng.choice(contacts) if rng.random() < 0.4 else None,
                )
                for i in range(n_contacts // 2 + 50)
            ]
        )
        today = date.today()
        Opportunity.objects.bulk_create(
            [
                Opportunity(
                    name=f"{rng.choice(COMPANIES)} - {rng.choice(['Renewal', 'Expansion', 'New deal', 'Pilot'])}",
                    contact=rng.choice(contacts),
                    lead=rng.choice(leads) if rng.random() < 0.5 else None,
                    amount=Decimal(rng.randint(10, 2000) * 100),
                    stage=rng.choice(Opportunity.Stage.values),
                    probability=rng.choice([10, 25, 50, 75, 90]),
                    close_date=today + timedelta(days=rng.randint(-60, 180)),
                )
                for _ in range(n_contacts // 2)
            ]
        )
        return True

    def _admin(self, site: str) -> list[str]:
        """Create the demo admin once. An existing user of that name is never changed (no
        password reset, no promotion): resetting the password would log everyone out."""
        user_model = get_user_model()
        user = user_model.objects.filter(username=DEMO_USERNAME).first()
        url = f"{site}/admin/"
        if user is None:
            user_model.objects.create_superuser(DEMO_USERNAME, "admin@example.com", DEMO_PASSWORD)
            password = DEMO_PASSWORD
        elif not (user.is_active and user.is_staff):
            return [
                self.style.WARNING(
                    f"A user {DEMO_USERNAME!r} exists and cannot use the admin; seed_demo leaves "
                    "it as it is. Create an admin with `manage.py createsuperuser`."
                )
            ]
        elif check_password(DEMO_PASSWORD, user.password):  # no setter: nothing is re-saved
            password = DEMO_PASSWORD
        else:
            password = "(unchanged: the one you set)"  # noqa: S105 - not a password
        return [
            self.style.SUCCESS(f"Log in: {url}  username: {DEMO_USERNAME}  password: {password}")
        ]

    def _roles(self) -> None:
        """Demo roles (groups holding CRM permissions) for the Generate page's "Same as role…"."""
        for name, scopes in DEMO_ROLES.items():
            group, created = Group.objects.get_or_create(name=name)
            if created:
                group.permissions.set(
                    Permission.objects.get(
                        content_type__app_label="crm",
                        codename=MODULES[m].permission(a).split(".")[1],
                    )
                    for m, actions in scopes.items()
                    for a in actions
                )

    def _keys(self, site: str) -> list[str]:
        actor = Actor(label="demo-seed")
        new = []
        for name, preset, description in DEMO_KEYS:
            if APIKey.objects.filter(name=name).exists():
                continue
            generated = services.key_generate(
                name=name, description=description, scopes=PRESETS[preset].scopes(), actor=actor
            )
            new.append((name, preset, generated.full_key))
        if not new:
            return [
                "Demo API keys exist already (their values were shown once, when created). "
                "Generate new ones in the admin or with `manage.py apikey create`."
            ]
        lines = [self.style.WARNING("Demo API keys - shown once, copy them now:")]
        for name, preset, full in new:
            lines.append(f"  {name:<34} [{PRESETS[preset].description}]\n    {full}")
        example = next((f for n, p, f in new if p == "bi-tool"), new[0][2])
        lines.append(f'Try: curl -H "Authorization: Bearer {example}" {site}/api/v1/contacts/')
        return lines
