#!/usr/bin/env python3
"""Prints one JSON line per charset: a message whose Subject, From display name and
text body carry the same text in that charset, as Python's `email` package writes them
(`Header(text, charset)`, `formataddr`, `MIMEText(text, "plain", charset)`), for every
CJK and Cyrillic codec Python has, plus labels real senders write that Python's `email`
does not (those words and bodies are built by hand with the codec they stand for).
Used by tests/charsets.rs."""
import base64
import json
from email.header import Header
from email.mime.text import MIMEText
from email.utils import formataddr

SIMPLIFIED = "中文测试：你好"
TRADITIONAL = "中文測試：你好"
JAPANESE = "日本語のテスト"
KOREAN = "한국어 시험"
RUSSIAN = "Привет, мир"
LATIN = "café déjà vu"

PYTHON = {
    "big5": TRADITIONAL, "big5hkscs": TRADITIONAL, "cp950": TRADITIONAL,
    "gb2312": SIMPLIFIED, "gbk": SIMPLIFIED, "gb18030": SIMPLIFIED, "hz": SIMPLIFIED,
    "cp932": JAPANESE, "euc_jp": JAPANESE, "euc_jis_2004": JAPANESE, "euc_jisx0213": JAPANESE,
    "shift_jis": JAPANESE, "shift_jis_2004": JAPANESE, "shift_jisx0213": JAPANESE,
    "iso2022_jp": JAPANESE, "iso2022_jp_1": JAPANESE, "iso2022_jp_2": JAPANESE,
    "iso2022_jp_2004": JAPANESE, "iso2022_jp_3": JAPANESE, "iso2022_jp_ext": JAPANESE,
    "euc_kr": KOREAN, "cp949": KOREAN, "johab": KOREAN, "iso2022_kr": KOREAN,
    "cp855": RUSSIAN, "cp866": RUSSIAN, "cp1125": RUSSIAN, "cp1251": RUSSIAN,
    "iso8859_5": RUSSIAN, "koi8_r": RUSSIAN, "koi8_t": RUSSIAN, "koi8_u": RUSSIAN,
    "kz1048": RUSSIAN, "mac_cyrillic": RUSSIAN, "ptcp154": RUSSIAN,
}
# Labels senders write -> the codec they mean.
BY_HAND = {
    "eucgb2312_cn": ("gb2312", SIMPLIFIED), "big5_tw": ("big5", TRADITIONAL),
    "ks_c_5601-1987": ("cp949", KOREAN), "x-gbk": ("gbk", SIMPLIFIED),
    "cp936": ("gbk", SIMPLIFIED), "ms936": ("gbk", SIMPLIFIED), "cp1251": ("cp1251", RUSSIAN),
    "latin_1": ("latin_1", LATIN), "utf8": ("utf-8", RUSSIAN),
    "iso8859_15": ("iso8859_15", LATIN), "euc_kr": ("euc_kr", KOREAN),
    "x-euc-jp": ("euc_jp", JAPANESE), "sjis": ("shift_jis", JAPANESE),
    "x-sjis": ("shift_jis", JAPANESE), "windows-31j": ("cp932", JAPANESE),
    "uhc": ("cp949", KOREAN), "csbig5": ("big5", TRADITIONAL),
}


def emit(label, text, eml):
    print(json.dumps({"label": label, "text": text, "eml": base64.b64encode(eml).decode()}))


for codec, text in PYTHON.items():
    message = MIMEText(text, "plain", codec)
    message["Subject"] = Header(text, codec)
    message["From"] = formataddr((text, "sender@example.com"), codec)
    message["Message-ID"] = "<charset@example.com>"
    emit(codec, text, message.as_bytes())

for label, (codec, text) in BY_HAND.items():
    word = "=?%s?B?%s?=" % (label, base64.b64encode(text.encode(codec)).decode())
    body = base64.encodebytes(text.encode(codec)).decode()
    eml = (
        f"From: {word} <sender@example.com>\nSubject: {word}\n"
        f"Message-ID: <charset@example.com>\nMIME-Version: 1.0\n"
        f'Content-Type: text/plain; charset="{label}"\nContent-Transfer-Encoding: base64\n\n{body}'
    )
    emit(label, text, eml.encode("ascii"))
