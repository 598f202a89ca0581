"""The one place memrelay imports litellm, configured to stay offline and quiet.

litellm 1.102.4 does network work on its own unless told not to: at import it fetches the model cost
map from GitHub (``LITELLM_LOCAL_MODEL_COST_MAP``), the first Anthropic call fetches a beta-headers
config (``LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS``), token counting may download HuggingFace tokenizers
(``disable_hf_tokenizer_download``), and in its default ``DEV`` mode it loads a ``.env`` file from the
working directory (``LITELLM_MODE``). Every engine module that needs litellm imports it from here::

    from memrelay.engine.adapters.llm.runtime import litellm

Operators can still override the environment flags before start-up; we only set defaults.
"""

from __future__ import annotations

import os

_OFFLINE_DEFAULTS = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS": "True",
    "LITELLM_LOCAL_BLOG_POSTS": "True",
    "LITELLM_LOCAL_AUTOROUTER_PRESETS": "True",
    "LITELLM_LOCAL_POLICY_TEMPLATES": "True",
    "LITELLM_MODE": "PRODUCTION",  # DEV mode would load_dotenv() from the cwd at import
}
for _name, _value in _OFFLINE_DEFAULTS.items():
    os.environ.setdefault(_name, _value)

import litellm  # noqa: E402  (must follow the environment defaults above)

litellm.telemetry = False
litellm.suppress_debug_info = True  # no "Give Feedback / Get Help" banners printed on errors
litellm.disable_hf_tokenizer_download = True  # token_counter falls back to bundled tiktoken
litellm.num_retries = 0  # memrelay retries itself (memrelay.engine.adapters.llm.retry)
litellm.success_callback = []
litellm.failure_callback = []
litellm.callbacks = []

__all__ = ["litellm"]
