"""The system checks of ``WAGTAIL_VECTOR_INDEX``, message by message.

The ids, messages and hints are public: projects silence the ids and people
read the wording, so each test compares exact ``Error``/``Warning`` objects.
"""

import socket

import pytest
from django.core.checks import Error, Warning
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from wagtail_vector_index import ai, conf
from wagtail_vector_index.ai_utils.backends import litellm as litellm_backends
from wagtail_vector_index.checks import check_settings
from wagtail_vector_index.exceptions import (
    InvalidAIBackendError,
    UnknownBackendAliasError,
)

LITELLM_CHAT = "wagtail_vector_index.ai_utils.backends.litellm.LiteLLMChatBackend"
LITELLM_EMBEDDING = (
    "wagtail_vector_index.ai_utils.backends.litellm.LiteLLMEmbeddingBackend"
)
ECHO_CHAT = "wagtail_vector_index.ai_utils.backends.echo.EchoChatBackend"
HASHING_EMBEDDING = (
    "wagtail_vector_index.ai_utils.backends.echo.HashingEmbeddingBackend"
)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Checks must work without a network: any connection attempt fails."""

    def refuse(self, address):
        raise AssertionError(f"system checks tried to connect to {address!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


def chat(**backends):
    return {"CHAT_BACKENDS": backends}


def embedding(**backends):
    return {"EMBEDDING_BACKENDS": backends}


# No messages.


def test_no_setting_uses_the_defaults_and_passes():
    # tests/settings.py has no WAGTAIL_VECTOR_INDEX.
    assert check_settings() == []
    assert conf.get_backend_settings("chat") == conf.DEFAULTS["chat"]
    assert conf.get_backend_settings("embedding") == conf.DEFAULTS["embedding"]


@override_settings(
    WAGTAIL_VECTOR_INDEX={
        "CHAT_BACKENDS": {
            "default": {
                "CLASS": LITELLM_CHAT,
                "CONFIG": {
                    "MODEL_ID": "gpt-4o",
                    "DEFAULT_PARAMETERS": {"temperature": 0.8},
                },
            }
        },
        "EMBEDDING_BACKENDS": {
            "default": {
                "CLASS": LITELLM_EMBEDDING,
                "CONFIG": {"MODEL_ID": "text-embedding-3-small"},
            }
        },
    }
)
def test_full_valid_setting_passes():
    assert check_settings() == []


@override_settings(
    WAGTAIL_VECTOR_INDEX={
        "CHAT_BACKENDS": {"default": {"CLASS": ECHO_CHAT}},
        "EMBEDDING_BACKENDS": {"default": {"CLASS": HASHING_EMBEDDING}},
    }
)
def test_offline_backends_need_no_model_id():
    assert check_settings() == []


@override_settings(
    WAGTAIL_VECTOR_INDEX=chat(
        default={"CLASS": LITELLM_CHAT, "CONFIG": {"MODEL_ID": "gpt-4o"}}
    )
)
def test_only_chat_backends_leaves_embeddings_on_the_default():
    assert check_settings() == []
    assert conf.get_backend_settings("embedding") == conf.DEFAULTS["embedding"]


# Errors.


@pytest.mark.parametrize(
    ("value", "type_name"),
    [
        ([{"CLASS": LITELLM_CHAT, "CONFIG": {"MODEL_ID": "gpt-4o"}}], "list"),
        ("gpt-4o", "str"),
    ],
)
def test_e001_setting_is_not_a_dict(value, type_name):
    with override_settings(WAGTAIL_VECTOR_INDEX=value):
        assert check_settings() == [
            Error(
                f"WAGTAIL_VECTOR_INDEX must be a dict, not {type_name}.",
                hint='Set WAGTAIL_VECTOR_INDEX = {"CHAT_BACKENDS": {...}, '
                '"EMBEDDING_BACKENDS": {...}}, or remove it to use the defaults.',
                id="wagtail_vector_index.E001",
            )
        ]


@pytest.mark.parametrize(
    ("kind_key", "value", "type_name"),
    [
        # A list of backends instead of backends by alias.
        ("CHAT_BACKENDS", [{"CLASS": LITELLM_CHAT}], "list"),
        # The model where the backends go.
        ("EMBEDDING_BACKENDS", "text-embedding-3-small", "str"),
    ],
)
def test_e002_backends_are_not_a_dict(kind_key, value, type_name):
    with override_settings(WAGTAIL_VECTOR_INDEX={kind_key: value}):
        assert check_settings() == [
            Error(
                f'WAGTAIL_VECTOR_INDEX["{kind_key}"] must be a dict of backends by '
                f"alias, not {type_name}.",
                hint='Use {"default": {"CLASS": "...", "CONFIG": {"MODEL_ID": '
                '"..."}}} or remove "' + kind_key + '" to use the default.',
                id="wagtail_vector_index.E002",
            )
        ]


@pytest.mark.parametrize(
    "backend",
    [
        {"CONFIG": {"MODEL_ID": "gpt-4o"}},  # CLASS forgotten.
        "gpt-4o",  # The model instead of the backend dict.
    ],
)
def test_e003_backend_without_class(backend):
    with override_settings(WAGTAIL_VECTOR_INDEX=chat(default=backend)):
        assert check_settings() == [
            Error(
                'WAGTAIL_VECTOR_INDEX["CHAT_BACKENDS"]["default"] must be a dict '
                'with a "CLASS" key.',
                hint='Give the backend as {"CLASS": "dotted.path.To.Backend", '
                '"CONFIG": {"MODEL_ID": "..."}}.',
                id="wagtail_vector_index.E003",
            )
        ]


@override_settings(
    WAGTAIL_VECTOR_INDEX=chat(
        default={
            # "Litellm" for "LiteLLM".
            "CLASS": LITELLM_CHAT.replace("LiteLLMChat", "LitellmChat"),
            "CONFIG": {"MODEL_ID": "gpt-4o"},
        }
    )
)
def test_e004_class_does_not_import():
    assert check_settings() == [
        Error(
            'WAGTAIL_VECTOR_INDEX["CHAT_BACKENDS"]["default"]["CLASS"] '
            "'wagtail_vector_index.ai_utils.backends.litellm.LitellmChatBackend' "
            "cannot be imported.",
            hint="Check the dotted path; for LiteLLM use "
            '"wagtail_vector_index.ai_utils.backends.litellm.LiteLLMChatBackend".',
            id="wagtail_vector_index.E004",
        )
    ]


@override_settings(
    WAGTAIL_VECTOR_INDEX=chat(
        default={"CLASS": "wagtail_vector_index.ai_utils.backends.echo.EchoBackend"}
    )
)
def test_e004_alone_when_the_class_might_have_a_default_model():
    # The offline classes need no MODEL_ID: without the class, its absence is
    # not reported as well.
    assert check_settings() == [
        Error(
            'WAGTAIL_VECTOR_INDEX["CHAT_BACKENDS"]["default"]["CLASS"] '
            "'wagtail_vector_index.ai_utils.backends.echo.EchoBackend' "
            "cannot be imported.",
            hint="Check the dotted path; for LiteLLM use "
            '"wagtail_vector_index.ai_utils.backends.litellm.LiteLLMChatBackend".',
            id="wagtail_vector_index.E004",
        )
    ]


@override_settings(WAGTAIL_VECTOR_INDEX=chat(default={"CLASS": HASHING_EMBEDDING}))
def test_e005_embedding_class_under_chat_backends():
    assert check_settings() == [
        Error(
            'WAGTAIL_VECTOR_INDEX["CHAT_BACKENDS"]["default"]["CLASS"] '
            "'wagtail_vector_index.ai_utils.backends.echo.HashingEmbeddingBackend' "
            "is not a chat backend.",
            hint="Use a subclass of BaseChatBackend, such as "
            '"wagtail_vector_index.ai_utils.backends.litellm.LiteLLMChatBackend".',
            id="wagtail_vector_index.E005",
        )
    ]


@override_settings(
    WAGTAIL_VECTOR_INDEX=embedding(
        default={
            "CLASS": LITELLM_CHAT,
            "CONFIG": {"MODEL_ID": "text-embedding-3-small"},
        }
    )
)
def test_e005_chat_class_under_embedding_backends():
    assert check_settings() == [
        Error(
            'WAGTAIL_VECTOR_INDEX["EMBEDDING_BACKENDS"]["default"]["CLASS"] '
            "'wagtail_vector_index.ai_utils.backends.litellm.LiteLLMChatBackend' "
            "is not an embedding backend.",
            hint="Use a subclass of BaseEmbeddingBackend, such as "
            '"wagtail_vector_index.ai_utils.backends.litellm.LiteLLMEmbeddingBackend".',
            id="wagtail_vector_index.E005",
        )
    ]


@override_settings(
    WAGTAIL_VECTOR_INDEX=chat(default={"CLASS": LITELLM_CHAT, "CONFIG": "gpt-4o"})
)
def test_e006_config_is_not_a_dict():
    assert check_settings() == [
        Error(
            'WAGTAIL_VECTOR_INDEX["CHAT_BACKENDS"]["default"]["CONFIG"] must be a '
            "dict, not str.",
            hint='Give the configuration as {"MODEL_ID": "...", ...}.',
            id="wagtail_vector_index.E006",
        )
    ]


@pytest.mark.parametrize(
    "config",
    [
        {"DEFAULT_PARAMETERS": {"temperature": 0.2}},  # Forgotten.
        {"MODEL_ID": ""},  # Left empty.
    ],
)
def test_e007_litellm_backend_without_model_id(config):
    with override_settings(
        WAGTAIL_VECTOR_INDEX=chat(default={"CLASS": LITELLM_CHAT, "CONFIG": config})
    ):
        assert check_settings() == [
            Error(
                'WAGTAIL_VECTOR_INDEX["CHAT_BACKENDS"]["default"]["CONFIG"]'
                '["MODEL_ID"] is missing or not a non-empty string.',
                hint='Name the model as LiteLLM knows it, e.g. "gpt-4o", '
                '"ollama/llama3" or "text-embedding-3-small".',
                id="wagtail_vector_index.E007",
            )
        ]


@override_settings(
    WAGTAIL_VECTOR_INDEX=chat(
        default={
            "CLASS": LITELLM_CHAT,
            "CONFIG": {
                "MODEL_ID": "gpt-4o",
                "DEFAULT_PARAMETERS": [("temperature", 0.2)],
            },
        }
    )
)
def test_e008_default_parameters_are_not_a_dict():
    assert check_settings() == [
        Error(
            'WAGTAIL_VECTOR_INDEX["CHAT_BACKENDS"]["default"]["CONFIG"]'
            '["DEFAULT_PARAMETERS"] must be a dict, not list.',
            hint='Give parameters as {"temperature": 0.7, ...}.',
            id="wagtail_vector_index.E008",
        )
    ]


@pytest.mark.parametrize(
    ("settings_value", "kind_key", "key", "value", "example"),
    [
        (
            chat(
                default={
                    "CLASS": LITELLM_CHAT,
                    "CONFIG": {"MODEL_ID": "gpt-4o", "TOKEN_LIMIT": "4096"},
                }
            ),
            "CHAT_BACKENDS",
            "TOKEN_LIMIT",
            "'4096'",
            "8191",
        ),
        (
            chat(
                default={
                    "CLASS": LITELLM_CHAT,
                    "CONFIG": {"MODEL_ID": "gpt-4o", "TOKEN_LIMIT": 0},
                }
            ),
            "CHAT_BACKENDS",
            "TOKEN_LIMIT",
            "0",
            "8191",
        ),
        (
            chat(
                default={
                    "CLASS": LITELLM_CHAT,
                    "CONFIG": {"MODEL_ID": "gpt-4o", "TOKEN_LIMIT": True},
                }
            ),
            "CHAT_BACKENDS",
            "TOKEN_LIMIT",
            "True",
            "8191",
        ),
        (
            embedding(
                default={
                    "CLASS": LITELLM_EMBEDDING,
                    "CONFIG": {
                        "MODEL_ID": "text-embedding-3-small",
                        "EMBEDDING_OUTPUT_DIMENSIONS": -1,
                    },
                }
            ),
            "EMBEDDING_BACKENDS",
            "EMBEDDING_OUTPUT_DIMENSIONS",
            "-1",
            "1536",
        ),
        (
            embedding(
                default={
                    "CLASS": LITELLM_EMBEDDING,
                    "CONFIG": {
                        "MODEL_ID": "text-embedding-3-small",
                        "MAX_CONCURRENCY": 0,
                    },
                }
            ),
            "EMBEDDING_BACKENDS",
            "MAX_CONCURRENCY",
            "0",
            "4",
        ),
    ],
    ids=[
        "token-limit-string",
        "token-limit-zero",
        "token-limit-bool",
        "dimensions-negative",
        "concurrency-zero",
    ],
)
def test_e009_not_a_positive_integer(settings_value, kind_key, key, value, example):
    with override_settings(WAGTAIL_VECTOR_INDEX=settings_value):
        assert check_settings() == [
            Error(
                f'WAGTAIL_VECTOR_INDEX["{kind_key}"]["default"]["CONFIG"]["{key}"] '
                f"must be a positive integer, not {value}.",
                hint=f'Set "{key}" to a whole number such as {example}, or remove it.',
                id="wagtail_vector_index.E009",
            )
        ]


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_e018_embedding_base64_is_not_a_bool(value):
    config = {"MODEL_ID": "text-embedding-3-small", "EMBEDDING_BASE64": value}
    with override_settings(
        WAGTAIL_VECTOR_INDEX=embedding(
            default={"CLASS": LITELLM_EMBEDDING, "CONFIG": config}
        )
    ):
        assert check_settings() == [
            Error(
                'WAGTAIL_VECTOR_INDEX["EMBEDDING_BACKENDS"]["default"]["CONFIG"]'
                f'["EMBEDDING_BASE64"] must be True or False, not {value!r}.',
                hint="True asks the provider for base64-encoded vectors, False for "
                "JSON numbers; remove the key to decide by the provider.",
                id="wagtail_vector_index.E018",
            )
        ]


@pytest.mark.parametrize("value", [True, False])
def test_embedding_base64_true_or_false_passes(value):
    config = {"MODEL_ID": "text-embedding-3-small", "EMBEDDING_BASE64": value}
    with override_settings(
        WAGTAIL_VECTOR_INDEX=embedding(
            default={"CLASS": LITELLM_EMBEDDING, "CONFIG": config}
        )
    ):
        assert check_settings() == []


@override_settings(
    WAGTAIL_VECTOR_INDEX=chat(
        default={"CLASS": LITELLM_CHAT, "CONFIG": {"MODEL_ID": "openai/my-model"}}
    )
)
def test_e010_unknown_model_without_token_limit():
    assert check_settings() == [
        Error(
            'WAGTAIL_VECTOR_INDEX["CHAT_BACKENDS"]["default"]["CONFIG"]: LiteLLM '
            'does not know the token limit of model "openai/my-model".',
            hint='Set "TOKEN_LIMIT" to the number of input tokens the model '
            "accepts (see the provider's documentation).",
            id="wagtail_vector_index.E010",
        )
    ]


@override_settings(
    WAGTAIL_VECTOR_INDEX=embedding(
        default={
            "CLASS": LITELLM_EMBEDDING,
            "CONFIG": {"MODEL_ID": "ollama/nomic-embed-text", "TOKEN_LIMIT": 8192},
        }
    )
)
def test_e011_unknown_embedding_model_without_dimensions(monkeypatch):
    # LiteLLM's get_model_info asks the Ollama server about models missing
    # from its map; describing a model must not.
    litellm = litellm_backends._litellm()
    get_model_info = litellm.get_model_info
    asked = []

    def spy(model, *args, **kwargs):
        asked.append(model)
        return get_model_info(model, *args, **kwargs)

    monkeypatch.setattr(litellm, "get_model_info", spy)
    litellm_backends.describe_litellm_model.cache_clear()
    try:
        assert check_settings() == [
            Error(
                'WAGTAIL_VECTOR_INDEX["EMBEDDING_BACKENDS"]["default"]["CONFIG"]: '
                "LiteLLM does not know the output dimensions of model "
                '"ollama/nomic-embed-text".',
                hint='Set "EMBEDDING_OUTPUT_DIMENSIONS" to the length of the '
                "vectors the model returns.",
                id="wagtail_vector_index.E011",
            )
        ]
    finally:
        litellm_backends.describe_litellm_model.cache_clear()
    assert "ollama/nomic-embed-text" not in asked


@override_settings(
    WAGTAIL_VECTOR_INDEX=chat(
        default={
            "CLASS": LITELLM_CHAT,
            "CONFIG": {
                "MODEL_ID": "gpt-4o",
                "DEFAULT_PARAMETERS": {
                    "model": "gpt-4o-mini",
                    "stream": True,
                    "temperature": 0.2,
                },
            },
        }
    )
)
def test_e012_default_parameters_set_what_the_backend_sets():
    assert check_settings() == [
        Error(
            'WAGTAIL_VECTOR_INDEX["CHAT_BACKENDS"]["default"]["CONFIG"]'
            '["DEFAULT_PARAMETERS"] sets "model", which the backend sets itself.',
            hint='Remove "model" and set the model with "MODEL_ID".',
            id="wagtail_vector_index.E012",
        ),
        Error(
            'WAGTAIL_VECTOR_INDEX["CHAT_BACKENDS"]["default"]["CONFIG"]'
            '["DEFAULT_PARAMETERS"] sets "stream", which the backend sets itself.',
            hint='Remove "stream".',
            id="wagtail_vector_index.E012",
        ),
    ]


# Warnings.


@override_settings(
    WAGTAIL_VECTOR_INDEX=chat(
        smart={"CLASS": LITELLM_CHAT, "CONFIG": {"MODEL_ID": "gpt-4o"}},
        fast={"CLASS": LITELLM_CHAT, "CONFIG": {"MODEL_ID": "gpt-4o-mini"}},
    )
)
def test_w001_no_default_alias():
    assert check_settings() == [
        Warning(
            'WAGTAIL_VECTOR_INDEX["CHAT_BACKENDS"] has no "default" alias.',
            hint='Calls that name no alias use "default"; add one or always pass '
            "an alias (configured: fast, smart).",
            id="wagtail_vector_index.W001",
        )
    ]


@override_settings(WAGTAIL_VECTOR_INDEX={"EMBEDDING_BACKENDS": {}})
def test_w001_no_backends_at_all():
    assert check_settings() == [
        Warning(
            'WAGTAIL_VECTOR_INDEX["EMBEDDING_BACKENDS"] has no "default" alias.',
            hint='Calls that name no alias use "default"; add one or always pass '
            "an alias (configured: none).",
            id="wagtail_vector_index.W001",
        )
    ]


@override_settings(
    WAGTAIL_VECTOR_INDEX=chat(
        default={
            "CLASS": LITELLM_CHAT,
            "CONFIG": {
                "MODEL_ID": "o1",
                "DEFAULT_PARAMETERS": {"temperature": 0.5, "top_p": 1},
            },
        }
    )
)
def test_w002_parameter_the_chat_model_does_not_support():
    # LiteLLM lists "temperature" for o1 but not "top_p".
    assert check_settings() == [
        Warning(
            'WAGTAIL_VECTOR_INDEX["CHAT_BACKENDS"]["default"]["CONFIG"]'
            '["DEFAULT_PARAMETERS"]["top_p"]: model "o1" does not support "top_p".',
            hint='Remove "top_p"; the provider would reject the call. Supported: '
            "logit_bias, max_completion_tokens, max_tokens, n, reasoning_effort, "
            "response_format, seed, stop, temperature, tool_choice, tools.",
            id="wagtail_vector_index.W002",
        )
    ]


@pytest.mark.parametrize(
    "config",
    [
        {"MODEL_ID": "text-embedding-3-small"},
        # LiteLLM's parameter list for "o1" is about chat: it says nothing
        # about an embedding backend.
        {"MODEL_ID": "o1", "EMBEDDING_OUTPUT_DIMENSIONS": 1536},
    ],
)
def test_w002_not_for_embedding_backends(config):
    config = {**config, "DEFAULT_PARAMETERS": {"temperature": 0.5, "top_p": 1}}
    with override_settings(
        WAGTAIL_VECTOR_INDEX=embedding(
            default={"CLASS": LITELLM_EMBEDDING, "CONFIG": config}
        )
    ):
        assert check_settings() == []


@override_settings(
    WAGTAIL_VECTOR_INDEX={
        "CHAT_BACKEND": {"default": {"CLASS": ECHO_CHAT}},
        "EMBEDDING_BACKENDS": {"default": {"CLASS": HASHING_EMBEDDING}},
    }
)
def test_w003_unknown_top_level_key():
    assert check_settings() == [
        Warning(
            'WAGTAIL_VECTOR_INDEX has an unknown key "CHAT_BACKEND".',
            hint='The known keys are "AUTO_UPDATE", "CHAT_BACKENDS", '
            '"CIRCUIT_BREAKER", "EMBEDDING_BACKENDS", "EMBEDDING_CACHE", '
            '"IMAGE_DESCRIPTION", "SITE_SETTINGS_CACHE_TIMEOUT", "STORAGE", '
            '"TEST_PAGES_RATE_LIMIT", "USAGE"; check the spelling.',
            id="wagtail_vector_index.W003",
        )
    ]


@override_settings(
    # "OPTIONS" as in wagtail-localize: the configuration is then missing.
    WAGTAIL_VECTOR_INDEX=chat(
        default={"CLASS": LITELLM_CHAT, "OPTIONS": {"MODEL_ID": "gpt-4o"}}
    )
)
def test_w003_unknown_backend_key():
    assert check_settings() == [
        Warning(
            'WAGTAIL_VECTOR_INDEX["CHAT_BACKENDS"]["default"] has an unknown key '
            '"OPTIONS".',
            hint='A backend takes "CLASS" and "CONFIG"; check the spelling.',
            id="wagtail_vector_index.W003",
        ),
        Error(
            'WAGTAIL_VECTOR_INDEX["CHAT_BACKENDS"]["default"]["CONFIG"]'
            '["MODEL_ID"] is missing or not a non-empty string.',
            hint='Name the model as LiteLLM knows it, e.g. "gpt-4o", '
            '"ollama/llama3" or "text-embedding-3-small".',
            id="wagtail_vector_index.E007",
        ),
    ]


@override_settings(
    WAGTAIL_VECTOR_INDEX=chat(
        default={
            "CLASS": LITELLM_CHAT,
            "CONFIG": {
                "MODEL_ID": "gpt-4o",
                "DEFAULT_PARAMETER": {"temperature": 0.2},
            },
        }
    )
)
def test_w003_unknown_config_key():
    assert check_settings() == [
        Warning(
            'WAGTAIL_VECTOR_INDEX["CHAT_BACKENDS"]["default"]["CONFIG"] has an '
            'unknown key "DEFAULT_PARAMETER".',
            hint="The known keys are ATTEMPT_TIMEOUT, BATCH_SIZE, BATCH_TOKEN_LIMIT, "
            "DEFAULT_PARAMETERS, EMBEDDING_BASE64, EMBEDDING_DIRECT, "
            "EMBEDDING_OUTPUT_DIMENSIONS, FALLBACKS, MAX_CONCURRENCY, MAX_RETRIES, "
            "MODEL_ID, SUPPORTS_VISION, TOKEN_LIMIT; check the spelling.",
            id="wagtail_vector_index.W003",
        )
    ]


# manage.py check.


@override_settings(
    WAGTAIL_VECTOR_INDEX=chat(
        default={
            "CLASS": "wagtail_vector_index.backends.LiteLLMChatBackend",
            "CONFIG": {"MODEL_ID": "gpt-4o"},
        }
    )
)
def test_manage_py_check_fails_for_an_error():
    with pytest.raises(SystemCheckError) as caught:
        call_command("check")
    assert "wagtail_vector_index.E004" in str(caught.value)


@override_settings(
    WAGTAIL_VECTOR_INDEX=chat(fast={"CLASS": ECHO_CHAT}),
    SILENCED_SYSTEM_CHECKS=["wagtail_vector_index.W001"],
)
def test_manage_py_check_honours_silenced_ids(capsys):
    call_command("check")
    assert "wagtail_vector_index" not in capsys.readouterr().err


# Errors at run time.


@override_settings(
    WAGTAIL_VECTOR_INDEX=chat(default={"CLASS": ECHO_CHAT}, fast={"CLASS": ECHO_CHAT})
)
def test_unknown_alias_names_the_alias_and_the_configured_ones():
    with pytest.raises(UnknownBackendAliasError) as caught:
        ai.get_chat_backend("missing")
    assert str(caught.value) == (
        'AI backend "missing": no chat backend with this alias is configured '
        '(configured: "default", "fast").'
    )
    assert isinstance(caught.value, InvalidAIBackendError)


@override_settings(
    WAGTAIL_VECTOR_INDEX=chat(
        default={"CLASS": LITELLM_CHAT, "CONFIG": {"MODEL_ID": "openai/my-model"}}
    )
)
def test_unknown_token_limit_at_run_time():
    with pytest.raises(InvalidAIBackendError) as caught:
        ai.get_chat_backend()
    assert str(caught.value) == (
        'AI backend "default": the token limit of model "openai/my-model" is '
        'unknown; set CONFIG["TOKEN_LIMIT"].'
    )


def test_changed_settings_clear_the_cache():
    def setting(model_id):
        return chat(a={"CLASS": LITELLM_CHAT, "CONFIG": {"MODEL_ID": model_id}})

    with override_settings(WAGTAIL_VECTOR_INDEX=setting("gpt-4o")):
        first = ai.get_chat_backend("a")
        assert first.config.model_id == "gpt-4o"
        assert ai.get_chat_backend("a") is first  # Built once per alias.
    with override_settings(WAGTAIL_VECTOR_INDEX=setting("gpt-4o-mini")):
        assert ai.get_chat_backend("a").config.model_id == "gpt-4o-mini"
    with pytest.raises(UnknownBackendAliasError):
        ai.get_chat_backend("a")  # Back to the defaults: only "default".


@pytest.mark.parametrize("value", [-1, "20", 2.5, True])
def test_e013_test_pages_rate_limit(value):
    with override_settings(WAGTAIL_VECTOR_INDEX={"TEST_PAGES_RATE_LIMIT": value}):
        assert check_settings() == [
            Error(
                'WAGTAIL_VECTOR_INDEX["TEST_PAGES_RATE_LIMIT"] must be a whole number '
                f"of calls per user per minute, not {value!r}.",
                hint="Use a number such as 20, or 0 for no limit.",
                id="wagtail_vector_index.E013",
            )
        ]
        assert conf.get_test_pages_rate_limit() == 20  # The default applies.


def test_e013_valid_limits():
    for value in (0, 5):
        with override_settings(WAGTAIL_VECTOR_INDEX={"TEST_PAGES_RATE_LIMIT": value}):
            assert check_settings() == []
            assert conf.get_test_pages_rate_limit() == value


def test_e014_auto_update_is_not_a_bool():
    with override_settings(WAGTAIL_VECTOR_INDEX={"AUTO_UPDATE": "yes"}):
        assert check_settings() == [
            Error(
                'WAGTAIL_VECTOR_INDEX["AUTO_UPDATE"] must be True or False, '
                "not 'yes'.",
                hint="Set it to True to update vector indexes when content is "
                "published, unpublished or deleted.",
                id="wagtail_vector_index.E014",
            )
        ]
        assert conf.get_auto_update() is False


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", 'WAGTAIL_VECTOR_INDEX["STORAGE"] must be a dotted path.'),
        (
            "no.such.Storage",
            "WAGTAIL_VECTOR_INDEX[\"STORAGE\"] 'no.such.Storage' cannot be imported "
            "(No module named 'no').",
        ),
    ],
)
def test_e015_storage(value, message):
    with override_settings(WAGTAIL_VECTOR_INDEX={"STORAGE": value}):
        assert check_settings() == [
            Error(
                message,
                hint=STORAGE_HINT,
                id="wagtail_vector_index.E015",
            )
        ]


STORAGE_HINT = (
    'Use "wagtail_vector_index.index.storage.DatabaseStorage" (the '
    'default), "wagtail_vector_index.index.storage.pgvector.PgvectorStorage" '
    "(PostgreSQL with the pgvector extension) or "
    '"wagtail_vector_index.index.storage.qdrant.QdrantStorage" (Qdrant, with '
    'its CONFIG), as a dotted path or as {"CLASS": "...", "CONFIG": {...}}.'
)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"CLASS": ""}, 'WAGTAIL_VECTOR_INDEX["STORAGE"] must be a dotted path.'),
        ({}, 'WAGTAIL_VECTOR_INDEX["STORAGE"] must be a dotted path.'),
        (
            {"CLASS": "wagtail_vector_index.index.storage.DatabaseStorage", "X": 1},
            'WAGTAIL_VECTOR_INDEX["STORAGE"] takes "CLASS" (a dotted path) and '
            '"CONFIG" (a dict), nothing else.',
        ),
        (
            {
                "CLASS": "wagtail_vector_index.index.storage.DatabaseStorage",
                "CONFIG": "url",
            },
            'WAGTAIL_VECTOR_INDEX["STORAGE"] takes "CLASS" (a dotted path) and '
            '"CONFIG" (a dict), nothing else.',
        ),
    ],
)
def test_e015_storage_in_the_backends_form(value, message):
    with override_settings(WAGTAIL_VECTOR_INDEX={"STORAGE": value}):
        assert check_settings() == [
            Error(message, hint=STORAGE_HINT, id="wagtail_vector_index.E015")
        ]


@pytest.mark.parametrize(
    "storage",
    [
        "wagtail_vector_index.index.storage.DatabaseStorage",
        {"CLASS": "wagtail_vector_index.index.storage.DatabaseStorage"},
        {"CLASS": "wagtail_vector_index.index.storage.DatabaseStorage", "CONFIG": {}},
    ],
)
def test_storage_setting_that_imports_passes(storage):
    with override_settings(WAGTAIL_VECTOR_INDEX={"STORAGE": storage}):
        assert check_settings() == []


def test_storage_in_the_backends_form_gets_its_config():
    from wagtail_vector_index.index.storage import DatabaseStorage, get_storage

    setting = {
        "CLASS": "wagtail_vector_index.index.storage.DatabaseStorage",
        "CONFIG": {"SOMETHING": 1},
    }
    with override_settings(WAGTAIL_VECTOR_INDEX={"STORAGE": setting}):
        storage = get_storage("pages")
    assert isinstance(storage, DatabaseStorage)
    assert storage.config == {"SOMETHING": 1}
    with override_settings(WAGTAIL_VECTOR_INDEX={}):
        assert get_storage("pages").config == {}


@pytest.mark.parametrize("value", [-1, "60", 1.5, True, None])
def test_e016_site_settings_cache_timeout(value):
    with override_settings(WAGTAIL_VECTOR_INDEX={"SITE_SETTINGS_CACHE_TIMEOUT": value}):
        assert check_settings() == [
            Error(
                'WAGTAIL_VECTOR_INDEX["SITE_SETTINGS_CACHE_TIMEOUT"] must be a whole '
                f"number of seconds, not {value!r}.",
                hint="Use a number such as 60 (the default), or 0 to read the "
                "site's AI settings from the database on every request.",
                id="wagtail_vector_index.E016",
            )
        ]
        assert conf.get_site_settings_cache_timeout() == 60  # The default applies.


def test_e016_valid_timeouts():
    assert conf.get_site_settings_cache_timeout() == 60
    for value in (0, 5, 3600):
        with override_settings(
            WAGTAIL_VECTOR_INDEX={"SITE_SETTINGS_CACHE_TIMEOUT": value}
        ):
            assert check_settings() == []
            assert conf.get_site_settings_cache_timeout() == value


@pytest.mark.parametrize("key", ["max_tokens", "max_completion_tokens"])
def test_w004_max_tokens_above_the_models_output_limit(key):
    # LiteLLM's map: gpt-3.5-turbo writes at most 4,096 tokens in one answer.
    config = {"MODEL_ID": "gpt-3.5-turbo", "DEFAULT_PARAMETERS": {key: 10**30}}
    with override_settings(
        WAGTAIL_VECTOR_INDEX=chat(default={"CLASS": LITELLM_CHAT, "CONFIG": config})
    ):
        assert check_settings() == [
            Warning(
                'WAGTAIL_VECTOR_INDEX["CHAT_BACKENDS"]["default"]["CONFIG"]'
                f'["DEFAULT_PARAMETERS"]["{key}"] is {10**30:,}, more than model '
                '"gpt-3.5-turbo" writes in one answer (4,096 tokens).',
                hint=f'Lower "{key}" to 4,096 or less; the provider may reject the '
                "call.",
                id="wagtail_vector_index.W004",
            )
        ]
        # Settings are the developer's business: the backend still sends it.
        assert ai.get_chat_backend().config.default_parameters[key] == 10**30


@pytest.mark.parametrize(
    "config",
    [
        # At the limit.
        {"MODEL_ID": "gpt-3.5-turbo", "DEFAULT_PARAMETERS": {"max_tokens": 4096}},
        # A model whose output limit LiteLLM does not know.
        {
            "MODEL_ID": "openai/my-model",
            "TOKEN_LIMIT": 8000,
            "DEFAULT_PARAMETERS": {"max_tokens": 10**30},
        },
    ],
)
def test_w004_not_at_the_limit_or_for_unknown_limits(config):
    with override_settings(
        WAGTAIL_VECTOR_INDEX=chat(default={"CLASS": LITELLM_CHAT, "CONFIG": config})
    ):
        assert check_settings() == []


def test_e018_embedding_direct_is_not_a_bool():
    config = {"MODEL_ID": "text-embedding-3-small", "EMBEDDING_DIRECT": "no"}
    with override_settings(
        WAGTAIL_VECTOR_INDEX=embedding(
            default={"CLASS": LITELLM_EMBEDDING, "CONFIG": config}
        )
    ):
        assert check_settings() == [
            Error(
                'WAGTAIL_VECTOR_INDEX["EMBEDDING_BACKENDS"]["default"]["CONFIG"]'
                "[\"EMBEDDING_DIRECT\"] must be True or False, not 'no'.",
                hint="True (the default) lets OpenAI-shaped embedding requests "
                "skip LiteLLM's reply objects where nothing is lost; False sends "
                "every request through LiteLLM.",
                id="wagtail_vector_index.E018",
            )
        ]


# Apps the package needs.


def test_e033_wagtail_contrib_settings_not_installed(monkeypatch):
    from django.apps import apps

    from wagtail_vector_index.checks import check_required_apps

    assert check_required_apps() == []
    installed = apps.is_installed
    monkeypatch.setattr(
        apps,
        "is_installed",
        lambda name: name != "wagtail.contrib.settings" and installed(name),
    )
    assert check_required_apps() == [
        Error(
            '"wagtail.contrib.settings" is not in INSTALLED_APPS: '
            "wagtail_vector_index needs it, and without it every Wagtail admin "
            "page fails.",
            hint='Add "wagtail.contrib.settings" to INSTALLED_APPS, as the '
            'README\'s "Install in your project" shows.',
            id="wagtail_vector_index.E033",
        )
    ]
