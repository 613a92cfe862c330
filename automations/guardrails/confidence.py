"""Decisions less confident than the automation's threshold wait for a person."""

from .base import GuardrailContext, passed, review


class ConfidenceCheck:
    name = "confidence"
    stage = "after"

    def check(self, ctx: GuardrailContext):
        if not ctx.decision:
            return passed(self.name, "no decision to check")
        threshold = ctx.automation.min_confidence
        confidence = ctx.decision.get("confidence")
        if isinstance(confidence, bool) or not isinstance(confidence, int | float):
            return review(self.name, "the decision has no numeric confidence")
        details = {"confidence": confidence, "min_confidence": threshold}
        if confidence < threshold:
            return review(
                self.name, f"confidence {confidence:.2f} is below {threshold:.2f}", **details
            )
        return passed(self.name, f"confidence {confidence:.2f} meets {threshold:.2f}", **details)
