"""Made-up but valid-looking personal data: names, resident ID numbers, phone numbers."""

from __future__ import annotations

import datetime as dt

import numpy as np

# The hundred commonest surnames, roughly in order of frequency, and a few compound ones.
SURNAMES = list(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕"
    "丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
) + ["欧阳", "司马", "诸葛", "上官"]
_SURNAME_WEIGHTS = np.concatenate([1 / np.arange(1, 101) ** 0.8, [0.004] * 4])
GIVEN_MALE = list(
    "伟强磊军洋勇杰涛明超刚平辉鹏华飞鑫波斌宇浩凯健俊帆帅旭宁龙林峰建国文志东海晨博然轩子睿泽宏亮成德锋"
)
GIVEN_FEMALE = list(
    "芳娜敏静丽艳娟霞燕玲桂英红梅琳雪婷慧莹倩颖洁佳欣怡萍琴兰月玉秀珍晶妍彤悦雯璐媛楠薇"
)

# Resident-ID area codes (6 digits) by province, including a few retired county codes that
# still appear on older cards.
# fmt: off
AREA_CODES = {
    "北京市": "110101 110102 110105 110106 110108 110228", "天津市": "120101 120104 120116",
    "河北省": "130102 130104 130203 130602 130123", "山西省": "140105 140106 140213 140121",
    "内蒙古自治区": "150102 150105 150203 150602",
    "辽宁省": "210102 210103 210106 210302 210181", "吉林省": "220102 220104 220202 220122",
    "黑龙江省": "230102 230103 230602 230184", "上海市": "310101 310104 310106 310115 310112",
    "江苏省": "320102 320106 320508 320213 320281",
    "浙江省": "330102 330106 330302 330602 330122", "安徽省": "340104 340111 340202 340123",
    "福建省": "350102 350103 350502 350582", "江西省": "360102 360103 360702 360124",
    "山东省": "370102 370103 370602 370783 370124", "河南省": "410102 410103 410303 410122",
    "湖北省": "420102 420106 420502 420625", "湖南省": "430102 430103 430202 430181",
    "广东省": "440103 440106 440104 440604 441900 441821",
    "广西壮族自治区": "450102 450103 450202 450126", "海南省": "460105 460108 460202 469002",
    "重庆市": "500103 500105 500101 500240", "四川省": "510104 510107 510105 510703 510185",
    "贵州省": "520102 520103 520303 520122", "云南省": "530102 530103 530302 530125",
    "西藏自治区": "540102 540103 540202", "陕西省": "610102 610113 610103 610302 610124",
    "甘肃省": "620102 620103 620502 620123", "青海省": "630102 630104 630121",
    "宁夏回族自治区": "640104 640106 640202 640121",
    "新疆维吾尔自治区": "650102 650103 650202 652301",
}
CITY_AREA_CODES = {
    "大连市": "210202 210203 210204 210211 210213 210283",
    "青岛市": "370202 370203 370212 370281", "宁波市": "330203 330205 330212 330282",
    "厦门市": "350203 350206 350211 350212", "深圳市": "440303 440304 440305 440306 440307",
}
# fmt: on
ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
CHECK_CHARS = "10X98765432"

# Mobile prefixes in use (154 and 194 never issued) with rough subscriber weights.
MOBILE_WEIGHTS = (
    "130-133:1 134-139:1.6 145:.1 147:.3 150-153:1 155-159:1 166:.5 170-171:.2 172:.05 173:.5 "
    "175:.4 176-178:.5 180-189:1 190:.2 191:.3 192:.1 193:.3 195:.2 196-197:.1 198-199:.5"
)
# Area codes whose local numbers have 8 digits, and some with 7.
LANDLINE_AREAS = {
    8: "010 020 021 022 023 024 025 027 028 029 0411 0431 0451 0532 0571 0574 0755",
    7: "0351 0471 0592 0791",
}


def _prefix_weights(spec: str) -> tuple[np.ndarray, np.ndarray]:
    prefixes, weights = [], []
    for item in spec.split():
        span, weight = item.split(":")
        first, _, last = span.partition("-")
        for prefix in range(int(first), int(last or first) + 1):
            prefixes.append(prefix)
            weights.append(float(weight))
    p = np.array(weights)
    return np.array(prefixes, dtype=np.int64), p / p.sum()


MOBILE_PREFIXES, _MOBILE_P = _prefix_weights(MOBILE_WEIGHTS)
_LANDLINES = [(area, digits) for digits, areas in LANDLINE_AREAS.items() for area in areas.split()]


def id_check_digit(first17: str) -> str:
    """GB 11643 check character for the first 17 digits of a resident ID."""
    total = sum(int(d) * w for d, w in zip(first17, ID_WEIGHTS.tolist(), strict=True))
    return CHECK_CHARS[total % 11]


def genders(rng: np.random.Generator, n: int) -> np.ndarray:
    """1 = male, 0 = female (the parity of an ID's 17th digit)."""
    return rng.integers(0, 2, n)


def names(rng: np.random.Generator, gender: np.ndarray) -> list[str]:
    """Surname + one or two given characters, matching the gender."""
    n = len(gender)
    surname = rng.choice(len(SURNAMES), n, p=_SURNAME_WEIGHTS / _SURNAME_WEIGHTS.sum())
    pools = (np.array(GIVEN_FEMALE), np.array(GIVEN_MALE))
    first = [pools[g][i] for g, i in zip(gender, rng.integers(0, 40, n), strict=True)]
    second = [pools[g][i] for g, i in zip(gender, rng.integers(0, 40, n), strict=True)]
    two = rng.random(n) < 0.7
    return [
        SURNAMES[s] + f + (x if t else "")
        for s, f, x, t in zip(surname, first, second, two, strict=True)
    ]


def id_numbers(
    rng: np.random.Generator,
    gender: np.ndarray,
    provinces: list[str],
    cities: list[str],
    as_of: dt.date,
) -> list[str]:
    """18-character resident IDs: area code of the province (or city), birth date, check digit."""
    n = len(gender)
    local = rng.random(n) < 0.75
    everywhere = [c for codes in AREA_CODES.values() for c in codes.split()]
    areas = []
    for p, c, here, i in zip(provinces, cities, local, rng.integers(0, 1 << 30, n), strict=True):
        pool = (CITY_AREA_CODES.get(c) or AREA_CODES.get(p, "")).split() if here else everywhere
        pool = pool or everywhere
        areas.append(int(pool[i % len(pool)]))
    age_days = (np.clip(rng.normal(42, 13, n), 18, 85) * 365.25).astype(np.int64)
    birth = np.datetime64(as_of, "D") - age_days
    year = birth.astype("datetime64[Y]").astype(np.int64) + 1970
    month = birth.astype("datetime64[M]").astype(np.int64) % 12 + 1
    day = (birth - birth.astype("datetime64[M]")).astype(np.int64) + 1
    seq = np.maximum(rng.integers(0, 500, n) * 2 + gender, 2)
    first17 = np.array(areas) * 10**11 + (year * 10000 + month * 100 + day) * 1000 + seq
    digits = (first17[:, None] // 10 ** np.arange(16, -1, -1)) % 10
    check = (digits * ID_WEIGHTS).sum(axis=1) % 11
    return [f"{f}{CHECK_CHARS[c]}" for f, c in zip(first17.tolist(), check.tolist(), strict=True)]


def mobiles(rng: np.random.Generator, n: int) -> np.ndarray:
    """11-digit mobile numbers as int64 (format with str)."""
    prefix = rng.choice(MOBILE_PREFIXES, n, p=_MOBILE_P)
    return prefix * 10**8 + rng.integers(0, 10**8, n)


def landlines(rng: np.random.Generator, n: int) -> list[str]:
    """Fixed-line numbers written the usual way: 010-62345678, 0592-5123456."""
    which = rng.integers(0, len(_LANDLINES), n)
    local = rng.integers(2 * 10**7, 9 * 10**7, n)
    out = []
    for w, num in zip(which.tolist(), local.tolist(), strict=True):
        area, digits = _LANDLINES[w]
        out.append(f"{area}-{str(num)[:digits]}")
    return out


def phones(rng: np.random.Generator, n: int, landline_share: float = 0.0) -> list[str]:
    """Contact numbers: mobiles, with `landline_share` of fixed lines."""
    mobile = mobiles(rng, n).astype(str).tolist()
    fixed = landlines(rng, n)
    use_fixed = rng.random(n) < landline_share
    return [f if u else m for m, f, u in zip(mobile, fixed, use_fixed, strict=True)]
