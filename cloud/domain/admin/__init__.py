"""Administration of a tenant: its call centres and contract order, wearers and
contacts, devices (provisioning, secret rotation, config), operators,
geofences, alarm receivers (SIA DC-09 forwarding); and the supervisors' reports. One module per area; AdminService is
all of them, as the API and the app wiring know it.

Every call takes the acting operator: the tenant is always the actor's, and
another tenant's object is reported absent (NotFound), never Forbidden, so its
existence does not leak. Every change writes an AuditEntry."""
from __future__ import annotations

from cloud.domain.admin.base import ROLES
from cloud.domain.admin.centres import CentresAdmin
from cloud.domain.admin.devices import DevicesAdmin, add_vsim_profile
from cloud.domain.admin.operators import OperatorsAdmin
from cloud.domain.admin.receivers import ReceiversAdmin
from cloud.domain.admin.reports import ReportsAdmin
from cloud.domain.admin.wearers import WearersAdmin
from cloud.domain.admin.welfare import WelfareAdmin


class AdminService(CentresAdmin, WearersAdmin, DevicesAdmin, OperatorsAdmin, ReportsAdmin, ReceiversAdmin,
                   WelfareAdmin):
    pass


__all__ = ["ROLES", "AdminService", "add_vsim_profile"]
