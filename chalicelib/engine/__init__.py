"""The pure journey engine: scenario version + instance + profile + stimulus + time → state + effects.

No I/O and no wall clock: the runtime loads state through its ports, calls these
functions and commits the effects; `simulate` runs them in virtual time.
"""

from .capture import Admission, capture
from .compiled import CompiledScenario
from .effects import (
    CallWebhook,
    CountStat,
    Effect,
    EmitEvent,
    Exit,
    Jump,
    Send,
    SendSkipped,
    SetTimer,
    TakePromoCode,
    UpdateProfile,
)
from .interpreter import (
    ANY_EVENT,
    Step,
    advance,
    end,
    listened_types,
    message_id,
    migrate,
    reacts_to,
    resume,
    start,
)
from .measure import Decision, convert, decide, engage, group_of
from .simulate import Simulation, simulate
from .state import (
    ACTIVE,
    COMPLETED,
    ERROR,
    EXITED,
    REMOVED,
    BranchTaken,
    EventArrived,
    Instance,
    PromoCodeResult,
    Stimulus,
    WakeUp,
    WebhookResult,
)

__all__ = [
    "ACTIVE",
    "ANY_EVENT",
    "COMPLETED",
    "ERROR",
    "EXITED",
    "REMOVED",
    "Admission",
    "BranchTaken",
    "CallWebhook",
    "CompiledScenario",
    "CountStat",
    "Decision",
    "Effect",
    "EmitEvent",
    "EventArrived",
    "Exit",
    "Instance",
    "Jump",
    "PromoCodeResult",
    "Send",
    "SendSkipped",
    "SetTimer",
    "Simulation",
    "Step",
    "Stimulus",
    "TakePromoCode",
    "UpdateProfile",
    "WakeUp",
    "WebhookResult",
    "advance",
    "capture",
    "convert",
    "decide",
    "end",
    "engage",
    "group_of",
    "listened_types",
    "message_id",
    "migrate",
    "reacts_to",
    "resume",
    "simulate",
    "start",
]
