"""Idempotent demo data: CRM records, a demo admin, and a few demo keys (printed once)."""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand
from django.db import transaction

from audit.actors import Actor
from crm.models import Contact, Lead, Opportunity
from crm.modules import MODULES
from keys import services
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


class Command(BaseCommand):
    help = "Load demo CRM data, a demo admin and demo API keys (safe to run again)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--contacts", type=int, default=200)

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        rng = random.Random(20261126)
        created = self._crm(rng, options["contacts"])
        self.stdout.write(
            f"CRM data: {Contact.objects.count()} contacts, {Lead.objects.count()} leads, "
            f"{Opportunity.objects.count()} opportunities" + (" (created now)" if created else "")
        )
        self._admin()
        self._roles()
        self._keys()

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

    def _admin(self) -> None:
        user_model = get_user_model()
        user, _ = user_model.objects.get_or_create(
            username=DEMO_USERNAME, defaults={"email": "admin@example.com"}
        )
        user.is_staff = user.is_superuser = True
        user.set_password(DEMO_PASSWORD)
        user.save()
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo admin: http://127.0.0.1:8000/admin/  username: {DEMO_USERNAME}  password: {DEMO_PASSWORD}"
            )
        )

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

    def _keys(self) -> None:
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
            self.stdout.write(
                "Demo API keys exist already (their values were shown once, when created). "
                "Generate new ones in the admin or with `manage.py apikey create`."
            )
            return
        self.stdout.write(self.style.WARNING("Demo API keys - shown once, copy them now:"))
        for name, preset, full in new:
            self.stdout.write(f"  {name:<34} [{PRESETS[preset].description}]\n    {full}")
        website = next((f for n, p, f in new if p == "bi-tool"), new[0][2])
        self.stdout.write(
            f'Try: curl -H "Authorization: Bearer {website}" http://127.0.0.1:8000/api/v1/contacts/'
        )
