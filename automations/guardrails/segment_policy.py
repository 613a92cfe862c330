"""Kill switches: a switched-off automation or segment blocks; otherwise report the mode."""

from .base import GuardrailContext, block, passed


class SegmentPolicyCheck:
    name = "segment_policy"
    stage = "before"

    def check(self, ctx: GuardrailContext):
        policy = ctx.policy()
        if policy.switched_off:
            return block(self.name, policy.switched_off, segment=policy.segment)
        if policy.segment_enabled is None:
            segment = policy.segment
            why = f"no policy for segment {segment}" if segment else "no segment"
            return passed(
                self.name, f"{why}: mode {policy.mode} applies", effective_mode=policy.mode
            )
        return passed(
            self.name,
            f"segment {policy.segment} is on: mode {policy.mode}",
            effective_mode=policy.mode,
        )
