import pytest

from actions.masking import MASK, Masker, looks_secret


@pytest.mark.parametrize(
    "key",
    [
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "PGPASSWORD",
        "db_pass",
        "DB_PWD",
        "apiKey",
        "API_KEY",
        "AWS_SECRET_ACCESS_KEY",
        "GITHUB_CREDENTIALS",
        "AUTH",
        "PRIVATE_KEY",
        "SENTRY_DSN",
        "DATABASE_URL",
    ],
)
def test_secret_looking_keys_are_recognised(key):
    assert looks_secret(key)


@pytest.mark.parametrize("key", ["PORT", "HOST", "AUTHOR", "MONKEY", "PASSAGE", "DB_NAME"])
def test_ordinary_keys_are_not_secret(key):
    assert not looks_secret(key)


def test_known_value_is_masked_wherever_it_appears():
    masker = Masker(["hunter2hunter2"])
    assert masker.mask("a hunter2hunter2 b hunter2hunter2") == f"a {MASK} b {MASK}"


def test_longest_secret_is_masked_first():
    masker = Masker(["abcd", "abcdefgh"])
    assert masker.mask("x abcdefgh y abcd") == f"x {MASK} y {MASK}"


def test_values_shorter_than_four_characters_are_ignored():
    masker = Masker(["abc", "", "ab"])
    assert masker.secrets == ()
    assert masker.mask("abc ab") == "abc ab"


def test_regex_characters_in_secrets_are_literal():
    masker = Masker(["p.a*s+s(1)"])
    assert masker.mask("pxass p.a*s+s(1)") == f"pxass {MASK}"


def test_each_line_of_a_multiline_secret_is_masked():
    key = "-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END KEY-----"
    masker = Masker([key])
    assert masker.mask("MIIEvQIBADANBgkqhkiG9w0BAQEFAASC") == MASK


def test_password_inside_a_url_secret_is_masked_alone_too():
    masker = Masker(["postgresql://app:s3cretpw@db/prod"])
    assert masker.mask("PGPASSWORD is s3cretpw") == f"PGPASSWORD is {MASK}"


def test_every_env_file_value_is_a_secret_whatever_its_key(tmp_path):
    env = tmp_path / ".env"
    env.write_text(
        "SLACK_BOT_TOKEN=xoxb-1-2-abcdef\n"
        "export DB_PASSWORD='correct horse'\n"
        'API_KEY="k-123456"\n'
        "NEXTAUTH_SALT=pepper-and-salt\n"
        "PORT=3000\n"
        "DB_NAME=ecom_os\n"
        "TZ=UTC\n"
        "# SECRET=commented-out\n"
    )
    masker = Masker.from_env_file(env)
    assert set(masker.secrets) == {
        "xoxb-1-2-abcdef", "correct horse", "k-123456", "pepper-and-salt", "3000", "ecom_os"
    }  # fmt: skip
    assert masker.mask("port 3000 on ecom_os in UTC, pw correct horse, salt pepper-and-salt") == (
        f"port {MASK} on {MASK} in UTC, pw {MASK}, salt {MASK}"  # shorter than 4: kept
    )


def test_missing_env_file_gives_no_secrets(tmp_path):
    assert Masker.from_env_file(tmp_path / "absent.env").secrets == ()


def test_env_files_combine_with_existing_secrets(tmp_path):
    (tmp_path / "a.env").write_text("A_TOKEN=token-aaaa\n")
    (tmp_path / "b.env").write_text("B_SECRET=secret-bbbb\n")
    masker = Masker(["given-cccc"]).with_env_files(
        [tmp_path / "a.env", tmp_path / "b.env", tmp_path / "none.env"]
    )
    text = "token-aaaa secret-bbbb given-cccc"
    assert masker.mask(text) == f"{MASK} {MASK} {MASK}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://app:pw1234@db:5432/x", "postgresql://app:***@db:5432/x"),
        ("redis://:pw1234@cache:6379", "redis://:***@cache:6379"),
        ("https://example.com:8443/a@b", "https://example.com:8443/a@b"),
        ("DB_PASSWORD=foo bar", "DB_PASSWORD=*** bar"),
        ('export API_KEY="some thing"', 'export API_KEY="***"'),
        ("token: abc", "token: ***"),
        ('{"password": "x1", "user": "bob"}', '{"password": "***", "user": "bob"}'),
        ("curl -H 'X-Api-Key: abc123def' http://x", "curl -H 'X-Api-Key: ***' http://x"),
        ("AUTHOR=John PORT=5432", "AUTHOR=John PORT=5432"),
        ("got xoxb-123-456-abcDEF from Slack", "got *** from Slack"),
        ("app token xapp-1-A0-xyz", "app token ***"),
        ("Authorization: Bearer eyJhbGciOi.abc.def", "Authorization: Bearer ***"),
        ("Authorization: Basic dXNlcjpwYXNz", "Authorization: Basic ***"),
        ("aws AKIAIOSFODNN7EXAMPLE ok", "aws *** ok"),
        ("using token 0123456789abcdef0123456789abcdef", "using token ***"),
        ("secret is c2VjcmV0IHZhbHVlIGhlcmUxMjM0NTY3OA==", "secret is ***"),
        ('FATAL: password authentication failed for "app"', None),
        ("plain text with nothing to hide", None),
    ],
)
def test_secret_shapes_are_masked_without_known_values(text, expected):
    assert Masker().mask(text) == (text if expected is None else expected)


def test_masking_twice_changes_nothing_more():
    masker = Masker(["supersecret"])
    once = masker.mask("PASSWORD=supersecret url postgresql://u:supersecret@h/db")
    assert "supersecret" not in once
    assert masker.mask(once) == once


def test_masker_is_callable_and_keeps_empty_text():
    masker = Masker(["secret-value"])
    assert masker("secret-value") == MASK
    assert masker.mask("") == ""


PEM_BODY = ("MIIEpAIBAAKCAQEA7bq98PAhvXm2TxAb+Pq0w9mQ3ExampleKeyMaterialNotReal0", "x9Q2==")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "POST https://hooks.slack.com/services/T0AAA/B0BBB/h00kS3cretT0ken ok",
            "POST https://hooks.slack.com/services/*** ok",
        ),
        ("xoxc-1234-5678-abcd and xoxd-abc123DEF", "*** and ***"),
        ("STRIPE_KEY is sk_live_51HabcDEF0123456789", "STRIPE_KEY is ***"),
        ("key sk_test_4eC39HqLyjWDarjtT1zdp7dc, rk_live_abcdefgh12", "key ***, ***"),
        ("postgresql://app:p@ssw0rd@db/shop", "postgresql://app:***@db/shop"),
        ("mysql://root:s3cr%40t@127.0.0.1:3306/x", "mysql://root:***@127.0.0.1:3306/x"),
        (
            '{"pem": "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBg\\n'
            '-----END PRIVATE KEY-----\\n"}',
            '{"pem": "-----BEGIN PRIVATE KEY-----***-----END PRIVATE KEY-----\\n"}',
        ),
    ],
)
def test_more_secret_shapes_are_masked(text, expected):
    assert Masker().mask(text) == expected


def test_a_private_key_block_is_masked_whole_in_text_and_in_lines():
    lines = ["key follows", "-----BEGIN RSA PRIVATE KEY-----", "Proc-Type: 4,ENCRYPTED",
             *PEM_BODY, "-----END RSA PRIVATE KEY-----", "done"]  # fmt: skip
    expected = ["key follows", "-----BEGIN RSA PRIVATE KEY-----", MASK, MASK, MASK,
                "-----END RSA PRIVATE KEY-----", "done"]  # fmt: skip
    assert Masker().mask("\n".join(lines)) == "\n".join(expected)
    assert Masker().mask_lines(lines) == expected
    # Output cut above the BEGIN line (a step's last lines) still hides the key's lines.
    assert Masker().mask_lines(lines[3:]) == expected[3:]


def test_a_private_key_split_across_output_batches_is_masked():
    stream = Masker().stream()
    first = stream(["-----BEGIN OPENSSH PRIVATE KEY-----", PEM_BODY[0]])
    second = stream([PEM_BODY[1], "-----END OPENSSH PRIVATE KEY-----", "after"])
    assert first == ["-----BEGIN OPENSSH PRIVATE KEY-----", MASK]
    assert second == [MASK, "-----END OPENSSH PRIVATE KEY-----", "after"]
    assert stream(["no key here"]) == ["no key here"]


def test_a_truncated_key_block_masks_everything_after_begin():
    text = "-----BEGIN EC PRIVATE KEY-----\n" + PEM_BODY[0]
    assert Masker().mask(text) == "-----BEGIN EC PRIVATE KEY-----\n" + MASK
