"""Kill switch per segment: a switched-off segment blocks; otherwise report the effective mode."""

from automations.routing import effective_mode

from .base import GuardrailContext, block, passed


class SegmentPolicyCheck:
    name = "segment_policy"
    stage = "before"

    def check(self, ctx: GuardrailContext):
        automation_mode = ctx.automation.mode
        policy = ctx.segment_policy()
        if policy is None:
            segment = ctx.run.segment
            why = f"no policy for segment {segment}" if segment else "no segment"
            return passed(
                self.name, f"{why}: mode {automation_mode} applies", effective_mode=automation_mode
            )
        if not policy.enabled:
            return block(self.name, f"segment {policy.key} is switched off", segment=policy.key)
        mode = effective_mode(automation_mode=automation_mode, policy_mode=policy.mode or None)
        return passed(self.name, f"segment {policy.key} is on: mode {mode}", effective_mode=mode)
