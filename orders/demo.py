"""The demo store's plan: Moroccan customers, products and order routes, seeded and pure.

``manage.py seed_demo`` plays a plan through the real write path on a simulated clock
(``orders.demo_history``): what the plan decides here is what people and carriers do and when;
what Livra does in answer (ask to confirm, tell the customer, remind, queue) is its own.
"""

import random
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.utils import timezone

from orders.models import OrderEvent
from orders.phones import normalize_phone
from orders.transitions import TRANSITIONS_BY_NAME, OrderStatus, PaymentMethod, shortest_path

STORE_NAME = "Atlas Souk"
STORE_SLUG = "atlas-souk"
ADMIN_USERNAME = "admin"
ADMIN_PASSWORD_ENV = "LIVRA_ADMIN_PASSWORD"  # noqa: S105 - the variable's name, not a password
SEED = 20260212  # same seed, same demo
CUSTOMER_COUNT = 46  # a few of them order twice
PREPAID_SHARE = 0.15  # most Moroccan e-commerce is cash on delivery
SMS_SHARE = 0.2  # customers who asked for SMS rather than WhatsApp
DAYS_OF_HISTORY = 14
CASABLANCA = ZoneInfo("Africa/Casablanca")
# The newest order is placed this long before the seed runs: the demo's live order, whose
# confirmation request the worker sends (and the newcomer answers on the sandbox phone).
LIVE_ORDER_AGE = timedelta(seconds=40)
# History ends this long before the seed runs, so that nothing of it is still happening.
HISTORY_ENDS = timedelta(minutes=5)

S = OrderStatus

# Per final status: how many demo orders end there (52 in all, a store's usual mix with every
# status present) and how old they may be (hours): orders still in the pipeline are recent,
# finished ones are spread over the whole fortnight. An order awaits confirmation for less than
# a day: the store's rules cancel it (or queue it for an agent) after 24 hours.
STATUSES = {
    S.PLACED:                (2, 3),  # prepaid orders waiting for their payment
    S.AWAITING_CONFIRMATION: (5, 20),
    S.CONFIRMED:             (3, 48),
    S.PROCESSING:            (3, 72),
    S.SHIPPED:               (4, 96),
    S.IN_TRANSIT:            (4, 120),
    S.OUT_FOR_DELIVERY:      (4, 120),
    S.DELIVERY_FAILED:       (2, 120),
    S.DELIVERED:             (13, DAYS_OF_HISTORY * 24),
    S.RTO_INITIATED:         (2, 9 * 24),
    S.RETURNED:              (3, DAYS_OF_HISTORY * 24),
    S.CANCELLED:             (5, DAYS_OF_HISTORY * 24),
    S.REFUNDED:              (2, DAYS_OF_HISTORY * 24),
}  # fmt: skip

# The way an order reaches each status: waypoints joined by shortest_path over the transition
# table (so the table stays the only source of legal moves). A waypoint the payment method
# cannot reach is skipped: prepaid orders have no COD confirmation.
_FULFILLED = [S.AWAITING_CONFIRMATION, S.PROCESSING, S.IN_TRANSIT, S.OUT_FOR_DELIVERY]
ROUTES: dict[str, list[list[str]]] = {
    S.PLACED: [[]],
    S.AWAITING_CONFIRMATION: [[S.AWAITING_CONFIRMATION]],
    S.CONFIRMED: [[S.AWAITING_CONFIRMATION, S.CONFIRMED]],
    S.PROCESSING: [[S.AWAITING_CONFIRMATION, S.PROCESSING]],
    S.SHIPPED: [[S.AWAITING_CONFIRMATION, S.PROCESSING, S.SHIPPED], [S.AWAITING_CONFIRMATION, S.SHIPPED]],
    S.IN_TRANSIT: [[S.AWAITING_CONFIRMATION, S.PROCESSING, S.IN_TRANSIT]],
    S.OUT_FOR_DELIVERY: [_FULFILLED, [*_FULFILLED, S.DELIVERY_FAILED, S.OUT_FOR_DELIVERY]],
    S.DELIVERY_FAILED: [[*_FULFILLED, S.DELIVERY_FAILED]],
    S.DELIVERED: [
        [*_FULFILLED, S.DELIVERED],
        [*_FULFILLED, S.DELIVERED],
        [*_FULFILLED, S.DELIVERY_FAILED, S.OUT_FOR_DELIVERY, S.DELIVERED],
        [S.AWAITING_CONFIRMATION, S.PROCESSING, S.SHIPPED, S.DELIVERED],
    ],
    S.RTO_INITIATED: [[*_FULFILLED, S.DELIVERY_FAILED, S.RTO_INITIATED]],
    S.RETURNED: [[*_FULFILLED, S.DELIVERY_FAILED, S.RTO_INITIATED, S.RETURNED]],
    S.CANCELLED: [
        [S.AWAITING_CONFIRMATION, S.CANCELLED],
        [S.AWAITING_CONFIRMATION, S.CONFIRMED, S.CANCELLED],
        [S.CANCELLED],
    ],
    S.REFUNDED: [
        [S.CANCELLED, S.REFUNDED],  # prepaid only: a paid order cancelled
        [*_FULFILLED, S.DELIVERED, S.REFUNDED],  # faulty item sent back after delivery
    ],
}

SRC = OrderEvent.Source
# Per transition: who reports it, and how many minutes after the previous step (min, max).
# A new COD order's confirmation request is the store's rules' (automations), made when the
# order arrives: it is no step of the plan.
STEPS = {
    "request_confirmation":  (SRC.AUTOMATION, 0, 0),  # the rule, as the order arrives
    "accept":                (SRC.STORE, 2, 30),  # the platform reports the payment
    "confirm":               (SRC.CUSTOMER, 10, 6 * 60),  # the customer answered "yes"
    "cancel":                (SRC.STORE, 30, 8 * 60),  # or the customer, at confirmation
    "start_processing":      (SRC.STORE, 60, 8 * 60),
    "ship":                  (SRC.STORE, 2 * 60, 20 * 60),
    "mark_in_transit":       (SRC.CARRIER, 3 * 60, 12 * 60),
    "mark_out_for_delivery": (SRC.CARRIER, 8 * 60, 30 * 60),
    "fail_delivery":         (SRC.CARRIER, 2 * 60, 8 * 60),
    "reschedule_delivery":   (SRC.CUSTOMER, 6 * 60, 24 * 60),
    "deliver":               (SRC.CARRIER, 60, 6 * 60),
    "initiate_return":       (SRC.CARRIER, 12 * 60, 40 * 60),
    "mark_returned":         (SRC.CARRIER, 24 * 60, 72 * 60),
    "refund":                (SRC.STORE, 24 * 60, 60 * 60),
}  # fmt: skip
CARRIER_TRANSITIONS = {name for name, (source, *_) in STEPS.items() if source == SRC.CARRIER}

# How customers answer the confirmation request: a tap on its button (WhatsApp), a word, or a call
# to the store. Every word here is one Livra's reply reader understands (messaging.services.inbound).
REPLY_WAYS = ["button", "button", "button", "text", "text", "call"]
CONFIRM_WORDS = {
    "fr": ["Oui", "oui merci", "Je confirme", "ok", "1"],
    "ar": ["نعم", "واخا", "أكيد", "1"],
    "en": ["Yes", "ok", "Yes please", "1"],
}
CANCEL_WORDS = {"fr": ["Non", "Annuler svp", "2"], "ar": ["لا", "إلغاء", "2"], "en": ["No", "2"]}
# A question instead of an answer: it waits in the inbox for an agent (and the store's rules
# put the order in the confirmation queue).
QUESTIONS = {
    "fr": ["Bonjour, la livraison c'est pour quand ?", "Je peux payer par carte à la livraison ?"],
    "ar": ["السلام عليكم، إيمتى غادي توصل الطلبية؟"],
    "en": ["Hi, can I change the delivery address?"],
}
QUESTION_SHARE = 0.4  # of the orders still awaiting confirmation
CANCEL_REASONS_BY_CUSTOMER = [
    "Le client a annulé lors de la confirmation",
    "Le client a changé d'avis",
    "Commande passée deux fois par erreur",
]
CANCEL_REASONS_BY_STORE = ["Rupture de stock", "Client injoignable après 3 appels", "Adresse hors zone"]
FAIL_REASONS = ["Client injoignable", "Client absent", "Adresse incomplète", "Le client a refusé le colis"]
RETURN_REASONS = ["Retour après échec de livraison", "Colis refusé à la porte", "Client injoignable"]
REFUND_REASONS = ["Article défectueux renvoyé par le client", "Commande prépayée annulée"]
ORDER_NOTES = [
    "Appeler avant de livrer",
    "Livrer après 18h",
    "Sonner à l'interphone, 3e étage",
    "Cadeau : ne pas mettre la facture dans le colis",
    "يرجى الاتصال قبل التوصيل",
]

FIRST_NAMES = [
    # Arabic-origin names as Moroccans write them in Latin script, and Amazigh names.
    "Youssef", "Amine", "Mehdi", "Hamza", "Othmane", "Ayoub", "Karim", "Rachid", "Omar", "Anas",
    "Ilyas", "Soufiane", "Yassine", "Hicham", "Brahim", "Zakaria", "Nabil", "Adil", "Mohamed",
    "Abdellah", "Idir", "Aksel", "Yuba", "Amastan", "Massin",
    "Fatima Zahra", "Khadija", "Salma", "Imane", "Nadia", "Meryem", "Hajar", "Sanaa", "Houda",
    "Zineb", "Ghita", "Kenza", "Loubna", "Asmae", "Oumaima", "Chaimae", "Siham", "Ilham",
    "Tilelli", "Tiziri", "Dihya", "Itto", "Tafsut", "Thanina",
]  # fmt: skip
LAST_NAMES = [
    "El Amrani", "Benali", "Ouahbi", "Bennani", "Alaoui", "El Idrissi", "Tazi", "Berrada",
    "Chraibi", "Benjelloun", "El Fassi", "Lahlou", "Bouzidi", "Cherkaoui", "Kettani", "Naciri",
    "Mansouri", "Haddad", "Sebti", "Ziani", "Ouazzani", "Filali", "Guessous", "Tahiri",
    "Essaidi", "Rahmouni", "Moussaoui", "Zerouali", "El Ouafi", "Boutaleb",
    "Ait Taleb", "Ait Lahcen", "Oubella", "Ouali", "Amellal", "Ouchen", "Azzouzi", "Ait Said",
    "Ouaziz", "Ait Baha", "Id Brahim", "Akouch", "Oukhouya", "Amzil",
]  # fmt: skip

# City → neighbourhoods (weights: where the orders of a Moroccan store come from).
CITIES = {
    "Casablanca": (9, ["Maârif", "Aïn Diab", "Sidi Maârouf", "Hay Mohammadi", "Bourgogne", "Oulfa"]),
    "Rabat": (5, ["Agdal", "Hay Riad", "Hassan", "Souissi", "Océan"]),
    "Marrakech": (5, ["Guéliz", "Hivernage", "Daoudiate", "Massira", "Sidi Youssef Ben Ali"]),
    "Fès": (4, ["Ville Nouvelle", "Saïss", "Narjiss", "Zouagha"]),
    "Tanger": (4, ["Malabata", "Iberia", "Marshan", "Beni Makada"]),
    "Agadir": (3, ["Talborjt", "Hay Dakhla", "Founty", "Les Amicales"]),
    "Meknès": (2, ["Hamria", "Marjane", "Bassatine"]),
    "Oujda": (2, ["Lazaret", "Al Qods", "Centre-ville"]),
    "Kénitra": (2, ["Maamora", "Bir Rami", "Centre-ville"]),
    "Tétouan": (2, ["Mhannech", "Wilaya Center", "Touabel"]),
    "Safi": (1, ["Biada", "Jrifat", "Plateau"]),
    "El Jadida": (1, ["Plateau", "Sidi Bouzid", "Hay Essalam"]),
    "Béni Mellal": (1, ["Hay Ghabat", "Centre-ville", "Hay Al Qods"]),
    "Nador": (1, ["Hay Al Matar", "Centre-ville", "Ouled Mimoun"]),
    "Laâyoune": (1, ["Hay Al Wahda", "Hay Al Qods", "Centre-ville"]),
}
STREETS = [
    "Avenue Mohammed V", "Boulevard Hassan II", "Rue Ibn Sina", "Rue Allal Ben Abdellah",
    "Avenue des FAR", "Rue Ibn Battouta", "Boulevard Zerktouni", "Rue Moulay Ismail",
    "Avenue Abdelkrim El Khattabi", "Rue Oued Sebou", "Rue Al Mansour Eddahbi",
]  # fmt: skip
RESIDENCES = ["Résidence Al Amal", "Résidence Nour", "Résidence Yasmine", "Résidence Al Andalous"]
CARRIERS = ["Amana", "CTM Messagerie", "Sendit", "Ozon Express", "Cathedis"]
TRACKING_URL = "https://tracking.example.com/{carrier}/{number}"  # the customer's tracking link


@dataclass(frozen=True)
class Product:
    sku: str
    title: str
    price: Decimal
    max_quantity: int = 1


PRODUCTS = [
    Product("AS-CAF-001", "Caftan brodé main, velours bordeaux", Decimal("1290.00")),
    Product("AS-CAF-002", "Caftan en satin, sfifa dorée", Decimal("890.00")),
    Product("AS-TAK-001", "Takchita de mariage deux pièces", Decimal("1890.00")),
    Product("AS-DJH-001", "Djellaba homme en laine, beige", Decimal("450.00")),
    Product("AS-DJF-001", "Djellaba femme brodée, vert émeraude", Decimal("520.00")),
    Product("AS-ARG-100", "Huile d'argan cosmétique bio 100 ml", Decimal("120.00"), 3),
    Product("AS-ARG-250", "Huile d'argan alimentaire 250 ml", Decimal("160.00"), 2),
    Product("AS-SAV-001", "Savon noir beldi à l'eucalyptus", Decimal("45.00"), 3),
    Product("AS-GHA-200", "Ghassoul de l'Atlas 200 g", Decimal("35.00"), 3),
    Product("AS-ROS-001", "Eau de rose de Kelâat M'Gouna 250 ml", Decimal("60.00"), 2),
    Product("AS-BAB-H01", "Babouches en cuir homme, jaune safran", Decimal("180.00"), 2),
    Product("AS-BAB-F01", "Babouches brodées femme", Decimal("160.00"), 2),
    Product("AS-TAJ-030", "Tajine en terre cuite de Safi, 30 cm", Decimal("150.00")),
    Product("AS-TAJ-DEC", "Tajine décoratif peint à la main", Decimal("220.00")),
    Product("AS-THE-SET", "Service à thé : théière argentée et 6 verres", Decimal("340.00")),
    Product("AS-POU-001", "Pouf en cuir brodé", Decimal("390.00")),
    Product("AS-LAN-001", "Lanterne en cuivre ciselé", Decimal("280.00")),
    Product("AS-TAP-BO1", "Tapis berbère Beni Ouarain 120 × 180", Decimal("2400.00")),
    Product("AS-AML-500", "Amlou maison 500 g", Decimal("110.00"), 2),
    Product("AS-SAF-002", "Safran de Taliouine 2 g", Decimal("90.00"), 2),
    Product("AS-ACC-CQ15", "Coque iPhone 15 en silicone", Decimal("79.00"), 2),
    Product("AS-ACC-CH25", "Chargeur rapide USB-C 25 W", Decimal("129.00")),
    Product("AS-ACC-CAB2", "Câble USB-C tressé 2 m", Decimal("49.00"), 3),
    Product("AS-ACC-EBT", "Écouteurs Bluetooth sans fil", Decimal("199.00")),
    Product("AS-ACC-PB10", "Batterie externe 10 000 mAh", Decimal("179.00")),
    Product("AS-ACC-SUPV", "Support téléphone voiture magnétique", Decimal("89.00")),
]


@dataclass(frozen=True)
class CustomerPlan:
    name: str
    phone_raw: str
    email: str
    language: str
    city: str
    address: str
    preferred_channel: str = ""


@dataclass
class Step:
    transition: str
    at: datetime
    source: str
    reason: str = ""
    payload: dict = field(default_factory=dict)
    # How the customer gives an answer to the confirmation request: "button", "text" (the
    # reply's words decide) or "call" (the store records it); "" for every other step.
    reply: str = ""
    words: str = ""


@dataclass
class OrderPlan:
    target: str
    payment_method: str
    customer_index: int
    placed_at: datetime
    items: list[tuple[Product, int]]
    steps: list[Step]
    notes: str = ""
    question: str = ""  # a question the customer asks instead of answering
    question_at: datetime | None = None
    live: bool = False  # placed just now: its messages are the worker's to send


def compose_route(waypoints: list[str], payment_method: str) -> list[str] | None:
    """Transition names through ``waypoints`` for this payment method, or None if it can't end there."""
    status, names = S.PLACED, []
    for waypoint in waypoints:
        try:
            names += shortest_path(waypoint, payment_method, start=status)
        except ValueError:
            continue  # e.g. a prepaid order has no COD confirmation to go through
        status = waypoint
    return names if status == (waypoints[-1] if waypoints else S.PLACED) else None


def ascii_slug(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in plain.lower() if ch.isalnum())


class DemoPlanner:
    """Decides everything about the demo data up front, from one seeded random generator."""

    def __init__(self, now: datetime, seed: int = SEED):
        self.rng = random.Random(seed)  # noqa: S311 - demo data, not secrets
        self.now = now

    def customers(self) -> list[CustomerPlan]:
        rng, used_names, used_phones, result = self.rng, set(), set(), []
        cities = list(CITIES)
        weights = [CITIES[c][0] for c in cities]
        while len(result) < CUSTOMER_COUNT:
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            if (first, last) in used_names:
                continue
            used_names.add((first, last))
            city = rng.choices(cities, weights)[0]
            phone_raw = self._mobile_number(used_phones)
            email = ""
            if rng.random() < 0.4:
                email = f"{ascii_slug(first)}.{ascii_slug(last)}{rng.randint(1, 99)}@example.com"
            language = rng.choices(["fr", "ar", "en"], [50, 40, 10])[0]
            address = self._address(city)
            preferred = "sms" if rng.random() < SMS_SHARE else ""
            result.append(
                CustomerPlan(f"{first} {last}", phone_raw, email, language, city, address, preferred)
            )
        return result

    def _mobile_number(self, used: set[str]) -> str:
        """A mobile number typed the local way (06…/07…) that phonenumbers accepts for MA."""
        while True:
            digits = self.rng.choice(["06", "07"]) + "".join(self.rng.choices("0123456789", k=8))
            e164 = normalize_phone(digits, "MA")
            if e164 and e164 not in used:
                used.add(e164)
                break
        pairs = [digits[i : i + 2] for i in range(0, 10, 2)]
        return self.rng.choice([digits, " ".join(pairs), "-".join(pairs), f"{digits[:4]} {digits[4:]}"])

    def _address(self, city: str) -> str:
        rng = self.rng
        if rng.random() < 0.35:
            street = f"{rng.choice(RESIDENCES)}, Imm. {rng.randint(1, 30)}, Appt {rng.randint(1, 24)}, "
        else:
            street = f"{rng.randint(1, 180)}, "
        return f"{street}{rng.choice(STREETS)}, {rng.choice(CITIES[city][1])}"

    def orders(self, customers: list[CustomerPlan]) -> list[OrderPlan]:
        rng = self.rng
        customer_count = len(customers)
        targets = [status for status, (count, _) in STATUSES.items() for _ in range(count)]
        rng.shuffle(targets)
        customer_indexes = list(range(customer_count))
        rng.shuffle(customer_indexes)
        plans = []
        for i, target in enumerate(targets):
            payment_method = PaymentMethod.PREPAID if rng.random() < PREPAID_SHARE else PaymentMethod.COD
            if target == S.PLACED:
                # A new COD order is asked to confirm at once (the store's rules): only a prepaid
                # order waiting for its payment stays placed.
                payment_method = PaymentMethod.PREPAID
            routes = self._routes(target, payment_method)
            if not routes:  # e.g. awaiting confirmation only exists for COD
                payment_method = (
                    PaymentMethod.COD if payment_method == PaymentMethod.PREPAID else PaymentMethod.PREPAID
                )
                routes = self._routes(target, payment_method)
            names = rng.choice(routes)
            customer = customer_indexes[i] if i < customer_count else rng.randrange(customer_count)
            plans.append(self._plan(target, payment_method, customer, names, customers[customer].language))
        self._make_live(plans)
        plans.sort(key=lambda plan: plan.placed_at)
        return plans

    def _make_live(self, plans: list[OrderPlan]) -> None:
        """The newest COD order awaiting confirmation is placed just now, and asks nothing yet."""
        awaiting = [p for p in plans if p.target == S.AWAITING_CONFIRMATION and not p.question]
        live = max(awaiting, key=lambda plan: plan.placed_at)
        live.placed_at, live.live = self.now - LIVE_ORDER_AGE, True

    def _routes(self, target: str, payment_method: str) -> list[list[str]]:
        routes = (compose_route(waypoints, payment_method) for waypoints in ROUTES[target])
        return [route for route in routes if route is not None]

    def _plan(
        self, target: str, payment_method: str, customer: int, names: list[str], language: str
    ) -> OrderPlan:
        rng = self.rng
        names = [name for name in names if name != "request_confirmation"]  # the rules' move
        delays = [timedelta(minutes=rng.uniform(*STEPS[name][1:])) for name in names]
        oldest = timedelta(hours=STATUSES[target][1])
        placed_at = self.now - oldest * rng.uniform(0.05, 1)
        times = step_times(placed_at, names, delays)
        latest = self.now - HISTORY_ENDS
        for _ in range(10):  # working hours can push the last step past now: start earlier
            if not times or times[-1] <= latest:
                break
            placed_at -= times[-1] - latest + timedelta(hours=1)
            times = step_times(placed_at, names, delays)

        carrier = rng.choice(CARRIERS)
        tracking = f"{carrier[:2].upper()}{rng.randint(10**9, 10**10 - 1)}MA"
        tracking_url = TRACKING_URL.format(carrier=ascii_slug(carrier), number=tracking)
        steps = []
        # A COD order is asked to confirm as it arrives (the store's rules).
        status = S.AWAITING_CONFIRMATION if payment_method == PaymentMethod.COD else S.PLACED
        for name, at in zip(names, times, strict=True):
            step = Step(name, at, source=STEPS[name][0])
            if name in CARRIER_TRANSITIONS or name == "ship":
                step.payload = {"carrier": carrier, "tracking_number": tracking, "tracking_url": tracking_url}
            if status == S.AWAITING_CONFIRMATION and name in ("confirm", "cancel") and rng.random() < 0.8:
                # The customer answers the confirmation request (a store's own cancel is the rest).
                step.source, step.reply = SRC.CUSTOMER, rng.choice(REPLY_WAYS)
                words = CONFIRM_WORDS if name == "confirm" else CANCEL_WORDS
                step.words = rng.choice(words[language])
                if step.reply == "call":
                    step.reason = "the customer called the store"
                    step.payload = {"channel": "phone"}
                    if name == "cancel":
                        step.reason = rng.choice(CANCEL_REASONS_BY_CUSTOMER)
            elif name == "cancel":
                step.reason = rng.choice(CANCEL_REASONS_BY_STORE)
            elif name == "fail_delivery":
                step.reason = rng.choice(FAIL_REASONS)
            elif name == "initiate_return":
                step.reason = rng.choice(RETURN_REASONS)
            elif name == "refund":
                step.reason = REFUND_REASONS[0] if status == S.DELIVERED else REFUND_REASONS[1]
            elif name == "confirm":  # no answer came: an agent reached the customer by phone
                step.source, step.reason = SRC.CUSTOMER, "confirmed by phone"
                step.payload = {"channel": "phone"}
            elif name == "reschedule_delivery":
                step.payload = {"channel": rng.choice(["whatsapp", "whatsapp", "sms", "phone"])}
            steps.append(step)
            status = TRANSITIONS_BY_NAME[name].target

        products = rng.sample(PRODUCTS, k=rng.choices([1, 2, 3], [60, 30, 10])[0])
        items = [(p, rng.randint(1, p.max_quantity) if rng.random() < 0.3 else 1) for p in products]
        notes = rng.choice(ORDER_NOTES) if rng.random() < 0.2 else ""
        plan = OrderPlan(target, payment_method, customer, placed_at, items, steps, notes)
        if target == S.AWAITING_CONFIRMATION and rng.random() < QUESTION_SHARE:
            plan.question = rng.choice(QUESTIONS[language])
            plan.question_at = min(placed_at + timedelta(minutes=rng.uniform(3, 90)), latest)
        return plan


def step_times(placed_at: datetime, names: list[str], delays: list[timedelta]) -> list[datetime]:
    """When each step happened: people and carriers work 9:00-20:00 (Casablanca), automations don't."""
    times, at = [], placed_at
    for name, delay in zip(names, delays, strict=True):
        at += delay
        if STEPS[name][0] != SRC.AUTOMATION:
            local = timezone.localtime(at, CASABLANCA)
            if not 9 <= local.hour < 20:
                next_morning = local.date() + timedelta(days=local.hour >= 20)
                opening = time(9 + local.hour % 3, local.minute, local.second, local.microsecond)
                at = datetime.combine(next_morning, opening, CASABLANCA).astimezone(at.tzinfo)
        times.append(at)
    return times
