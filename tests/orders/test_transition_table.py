"""The model's state machine is exactly the committed table in orders/transitions.py."""

from pathlib import Path

from django.contrib.auth.models import Permission

from orders.models import Order
from orders.transitions import TRANSITIONS, OrderStatus, mermaid_diagram

README = Path(__file__).resolve().parents[2] / "README.md"


def machine_edges() -> set[tuple]:
    field = Order._meta.get_field("status")
    return {
        (t.name, t.source, t.target, t.permission, tuple(t.conditions))
        for t in field.get_all_transitions(Order)
    }


def table_edges() -> set[tuple]:
    return {
        (spec.name, str(source), str(spec.target), f"orders.{spec.permission}", spec.conditions)
        for spec in TRANSITIONS
        for source in spec.sources
    }


def test_the_model_declares_exactly_the_transitions_of_the_table():
    assert machine_edges() == table_edges()


def test_every_status_is_reachable_from_placed():
    reached = {OrderStatus.PLACED.value} | {target for _, _, target, _, _ in table_edges()}
    assert reached == set(OrderStatus.values)


def test_every_transition_has_a_named_permission_in_the_database(db):
    codenames = set(
        Permission.objects.filter(content_type__app_label="orders").values_list("codename", flat=True)
    )
    assert {spec.permission for spec in TRANSITIONS} <= codenames


def test_the_readme_shows_the_diagram_rendered_from_the_table():
    assert mermaid_diagram() in README.read_text(encoding="utf-8")
