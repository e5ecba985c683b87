"""Masks from boxes and clicks, so that a video can be segmented with no mask file.

    from lgdk.prompts import masks_from_prompts
    ids = masks_from_prompts(frame, boxes=[(40, 30, 200, 180)], points=[(120, 80, False)])

The prompts (`spec`), how they become a mask (`make`), by the prompt network (`net`,
`learned`, `crop`) or GrabCut (`grabcut`, `refine`).
"""

from lgdk.prompts.make import (
    DEFAULT_METHOD,
    METHODS,
    mask_from_object_prompts,
    masks_from_prompts,
    prompts_from_lists,
    shipped_prompt_net,
    with_others_clicks,
)

__all__ = ["DEFAULT_METHOD", "METHODS", "mask_from_object_prompts", "masks_from_prompts",
           "prompts_from_lists", "shipped_prompt_net", "with_others_clicks"]
