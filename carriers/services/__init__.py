"""Carriers' services: plain functions, one module per concern."""

from carriers.services.accounts import (
    carrier_account_adapter,
    carrier_account_create,
    carrier_account_env_status,
    carrier_label,
)
from carriers.services.cities import carrier_cities_sync, carrier_city_match, city_correction_set, city_key
from carriers.services.dispatch import (
    dispatch_batch_create,
    dispatch_batch_labels,
    dispatch_batch_run,
    dispatch_batch_shipments,
)
from carriers.services.mappings import status_mapping_for, status_mapping_set, status_mappings_sync
from carriers.services.parcels import (
    parcel_request_for,
    shipment_cancel,
    shipment_create,
    shipment_reconcile,
    shipments_label_pdf,
    shipments_track,
)
from carriers.services.sandbox_walk import sandbox_parcels_walk, sandbox_walk_settings_for
from carriers.services.shipments import shipment_record
from carriers.services.tracking import tracking_event_apply, tracking_updates_record

__all__ = [
    "carrier_account_adapter",
    "carrier_account_create",
    "carrier_account_env_status",
    "carrier_cities_sync",
    "carrier_city_match",
    "carrier_label",
    "city_correction_set",
    "city_key",
    "dispatch_batch_create",
    "dispatch_batch_labels",
    "dispatch_batch_run",
    "dispatch_batch_shipments",
    "parcel_request_for",
    "sandbox_parcels_walk",
    "sandbox_walk_settings_for",
    "shipment_cancel",
    "shipment_create",
    "shipment_reconcile",
    "shipment_record",
    "shipments_label_pdf",
    "shipments_track",
    "status_mapping_for",
    "status_mapping_set",
    "status_mappings_sync",
    "tracking_event_apply",
    "tracking_updates_record",
]
