"""Execution notice frames: AES-256-CBC decryption and the H0STCNI0 / H0GSCNI0 layouts (no I/O)."""

from __future__ import annotations

import base64
from decimal import Decimal

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from brokergateway.kis.notices import decrypt, parse_frame
from yquant.messages import Side

KEY = "k" * 16 + "K" * 16  # 32 characters, used as UTF-8 bytes
IV = "i" * 16


def encrypt(text: str) -> str:
    padder = padding.PKCS7(128).padder()
    data = padder.update(text.encode()) + padder.finalize()
    encryptor = Cipher(algorithms.AES(KEY.encode()), modes.CBC(IV.encode())).encryptor()
    return base64.b64encode(encryptor.update(data) + encryptor.finalize()).decode()


def domestic(odno: str = "0000001234", quantity: str = "3", price: str = "70100", fill: bool = True) -> list[str]:
    fields = ["htsid", "5000000101", odno, "", "02", "0", "01", "0", "005930", quantity, price, "100501", "0",
              "2" if fill else "1", "2", "06010", "3", "name", "", "1", "Y", "", "10", "", "삼성전자", "0"]  # fmt: skip
    assert len(fields) == 26
    return fields


def test_decrypt_reverses_kis_encryption() -> None:
    # Encrypted with another library (cryptography, as the simulator does): the same cipher.
    assert decrypt(encrypt("a^b^c"), KEY, IV) == "a^b^c"
    assert decrypt(encrypt("x" * 16), KEY, IV) == "x" * 16  # a whole block of padding


def test_a_payload_that_does_not_decrypt_raises_value_error() -> None:
    whole = base64.b64decode(encrypt("a^b^c"))
    # "a^b^c" pads with eleven 0x0b bytes; an iv whose last byte differs by 0x0b turns the last
    # one into 0x00, which no PKCS7 padding ends with.
    wrong_iv = IV[:-1] + chr(ord(IV[-1]) ^ 0x0B)
    with pytest.raises(ValueError, match=r"[Pp]adding"):
        decrypt(encrypt("a^b^c"), KEY, wrong_iv)
    with pytest.raises(ValueError, match="16 byte boundary"):
        decrypt(base64.b64encode(whole[:-1]).decode(), KEY, IV)  # not a whole number of blocks


def test_encrypted_domestic_fill_notice_is_parsed_from_the_26_field_layout() -> None:
    frame = f"1|H0STCNI0|001|{encrypt('^'.join(domestic()))}"
    [notice] = parse_frame(frame, {"H0STCNI0": (KEY, IV)})
    assert (notice.account_number, notice.broker_order_id, notice.ticker) == ("5000000101", "1234", "005930")
    assert (notice.side, notice.quantity, notice.price, notice.time) == (Side.BUY, 3, Decimal(70100), "100501")
    assert notice.is_fill
    assert not notice.refused
    assert not notice.us


def test_several_records_in_one_frame_and_acceptance_notices() -> None:
    text = "^".join(domestic("0000000001", "1") + domestic("0000000002", "2", fill=False))
    notices = parse_frame(f"0|H0STCNI9|002|{text}", {})
    assert [(n.broker_order_id, n.quantity, n.is_fill) for n in notices] == [("1", 1, True), ("2", 2, False)]


def test_us_notice_layout_has_no_order_condition_field() -> None:
    fields = ["htsid", "5000000101", "0000002001", "", "01", "0", "00", "AAPL", "4", "189.5", "220501", "0", "2",
              "2", "01790", "4", "name", "APPLE INC", "0", "", "", "", "", ""]  # fmt: skip
    [notice] = parse_frame(f"1|H0GSCNI0|001|{encrypt('^'.join(fields))}", {"H0GSCNI0": (KEY, IV)})
    assert (notice.us, notice.ticker, notice.side, notice.quantity, notice.price) == (
        True,
        "AAPL",
        Side.SELL,
        4,
        Decimal("189.5"),
    )


def test_frames_without_a_key_or_shape_yield_nothing() -> None:
    assert parse_frame(f"1|H0STCNI0|001|{encrypt('x')}", {}) == []
    assert parse_frame("garbage", {}) == []
    assert parse_frame("0|H0STCNI0|001|too^short", {}) == []


def us_fields(price: str, quantity: str = "0000000004", odno: str = "0000002001") -> list[str]:
    """KIS's current 25-field H0GSCNI0 record (docs/kis-protocol.md §8)."""
    fields = ["htsid", "5000000101", odno, "", "02", "0", "2", "AAPL", quantity, price, "220501", "0", "2",
              "2", "01790", "4", "name", "APPLE INC", "6", "10", "", "", "", "", "1895000"]  # fmt: skip
    assert len(fields) == 25
    return fields


def test_us_notice_of_the_current_25_field_layout_reads_the_price_with_its_four_implied_decimals() -> None:
    [notice] = parse_frame(f"1|H0GSCNI0|001|{encrypt('^'.join(us_fields('001895000')))}", {"H0GSCNI0": (KEY, IV)})
    assert (notice.us, notice.ticker, notice.side, notice.quantity, notice.price, notice.is_fill) == (
        True,
        "AAPL",
        Side.BUY,
        4,
        Decimal("189.5"),
        True,
    )


def test_several_25_field_us_records_in_one_frame() -> None:
    text = "^".join(
        us_fields("001895000", "0000000001", "0000000001") + us_fields("000012345", "0000000002", "0000000002")
    )
    notices = parse_frame(f"0|H0GSCNI9|002|{text}", {})
    assert [(n.broker_order_id, n.quantity, n.price) for n in notices] == [
        ("1", 1, Decimal("189.5")),
        ("2", 2, Decimal("1.2345")),
    ]
