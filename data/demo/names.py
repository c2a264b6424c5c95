"""Names for the demo city in Chinese and English: districts, place names for streets and communities, people.

Street and community names are made up from common Chongqing place-name parts (坪, 湾, 沱, 垭...),
so they read like real ones without pretending to be the real unit at that spot.
"""

from __future__ import annotations

import numpy as np

# The nine districts of Chongqing's central urban area (中心城区), by the GB/T 2260 code the
# boundary file carries: (English name, Chinese name, 2020 census population in thousands).
# The population decides how many grids each district gets.
CENTRAL_DISTRICTS = {
    "500103": ("Yuzhong District", "渝中区", 589),
    "500104": ("Dadukou District", "大渡口区", 421),
    "500105": ("Jiangbei District", "江北区", 926),
    "500106": ("Shapingba District", "沙坪坝区", 1478),
    "500107": ("Jiulongpo District", "九龙坡区", 1530),
    "500108": ("Nan'an District", "南岸区", 1197),
    "500109": ("Beibei District", "北碚区", 834),
    "500112": ("Yubei District", "渝北区", 2192),
    "500113": ("Banan District", "巴南区", 1183),
}
CITY_NAME_EN = "Chongqing Central Urban Area"
CITY_NAME_ZH = "重庆市中心城区"

# First parts of place names: (汉字, pinyin).
_PLACE_HEADS = (
    ("黄桷", "Huangjue"), ("石门", "Shimen"), ("龙溪", "Longxi"), ("花园", "Huayuan"), ("金竹", "Jinzhu"),
    ("白鹤", "Baihe"), ("青龙", "Qinglong"), ("桂花", "Guihua"), ("松林", "Songlin"), ("杨柳", "Yangliu"),
    ("红岩", "Hongyan"), ("翠湖", "Cuihu"), ("新华", "Xinhua"), ("民主", "Minzhu"), ("和平", "Heping"),
    ("文化", "Wenhua"), ("育才", "Yucai"), ("朝阳", "Chaoyang"), ("东风", "Dongfeng"), ("团结", "Tuanjie"),
    ("胜利", "Shengli"), ("光明", "Guangming"), ("幸福", "Xingfu"), ("双碑", "Shuangbei"), ("高峰", "Gaofeng"),
    ("凤凰", "Fenghuang"), ("玉带", "Yudai"), ("白沙", "Baisha"), ("清水", "Qingshui"), ("鹅岭", "Eling"),
    ("佛图", "Fotu"), ("嘉陵", "Jialing"), ("滨江", "Binjiang"), ("观音", "Guanyin"), ("天星", "Tianxing"),
    ("望江", "Wangjiang"), ("马鞍", "Ma'an"), ("桃源", "Taoyuan"), ("梨树", "Lishu"), ("枇杷", "Pipa"),
    ("五福", "Wufu"), ("万寿", "Wanshou"), ("金山", "Jinshan"), ("银杏", "Yinxing"), ("荷花", "Hehua"),
    ("兰花", "Lanhua"), ("海棠", "Haitang"), ("鸳鸯", "Yuanyang"), ("大石", "Dashi"), ("小溪", "Xiaoxi"),
    ("平安", "Ping'an"), ("永安", "Yong'an"), ("建新", "Jianxin"), ("北斗", "Beidou"), ("紫薇", "Ziwei"),
    ("锦绣", "Jinxiu"), ("云峰", "Yunfeng"), ("兴隆", "Xinglong"), ("同心", "Tongxin"), ("福寿", "Fushou"),
    ("双龙", "Shuanglong"), ("龙泉", "Longquan"), ("泉水", "Quanshui"), ("柏树", "Baishu"), ("枫林", "Fenglin"),
    ("铁山", "Tieshan"), ("碧水", "Bishui"), ("南湖", "Nanhu"), ("月亮", "Yueliang"), ("星光", "Xingguang"),
    ("华福", "Huafu"), ("春晖", "Chunhui"), ("晓月", "Xiaoyue"), ("茶园", "Chayuan"), ("盘龙", "Panlong"),
    ("狮子", "Shizi"), ("九曲", "Jiuqu"), ("回龙", "Huilong"), ("水碾", "Shuinian"), ("土桥", "Tuqiao"),
)  # fmt: skip
# Last parts: (汉字, pinyin), all starting with a consonant so the English joins without an apostrophe.
_PLACE_TAILS = (
    ("坝", "ba"), ("湾", "wan"), ("坡", "po"), ("岗", "gang"), ("桥", "qiao"), ("溪", "xi"), ("坪", "ping"),
    ("垭", "ya"), ("嘴", "zui"), ("口", "kou"), ("寺", "si"), ("苑", "yuan"), ("路", "lu"), ("街", "jie"),
    ("园", "yuan"), ("塘", "tang"), ("沟", "gou"), ("湖", "hu"), ("山", "shan"), ("林", "lin"), ("沱", "tuo"),
    ("堡", "bao"), ("场", "chang"), ("门", "men"),
)  # fmt: skip
_NUMERALS_ZH = "一二三四五六七八九十"

# Common surnames with rough relative frequencies, and characters of given names.
_SURNAMES = (
    ("王", "Wang", 7.1), ("李", "Li", 7.0), ("张", "Zhang", 6.7), ("刘", "Liu", 5.4), ("陈", "Chen", 4.5),
    ("杨", "Yang", 3.1), ("黄", "Huang", 2.2), ("赵", "Zhao", 2.0), ("吴", "Wu", 1.8), ("周", "Zhou", 1.7),
    ("徐", "Xu", 1.3), ("孙", "Sun", 1.2), ("马", "Ma", 1.2), ("朱", "Zhu", 1.1), ("胡", "Hu", 1.1),
    ("郭", "Guo", 1.0), ("何", "He", 1.0), ("罗", "Luo", 0.9), ("高", "Gao", 0.9), ("林", "Lin", 0.8),
    ("谭", "Tan", 0.8), ("冉", "Ran", 0.5), ("邓", "Deng", 0.7), ("蒋", "Jiang", 0.6), ("唐", "Tang", 0.6),
    ("曾", "Zeng", 0.6), ("彭", "Peng", 0.6), ("向", "Xiang", 0.4), ("熊", "Xiong", 0.4), ("秦", "Qin", 0.4),
)  # fmt: skip
_GIVEN = (
    ("伟", "wei"), ("芳", "fang"), ("娜", "na"), ("敏", "min"), ("静", "jing"), ("丽", "li"), ("强", "qiang"),
    ("磊", "lei"), ("军", "jun"), ("洋", "yang"), ("勇", "yong"), ("艳", "yan"), ("杰", "jie"), ("娟", "juan"),
    ("涛", "tao"), ("明", "ming"), ("超", "chao"), ("秀", "xiu"), ("霞", "xia"), ("平", "ping"), ("刚", "gang"),
    ("桂", "gui"), ("英", "ying"), ("华", "hua"), ("建", "jian"), ("国", "guo"), ("红", "hong"), ("文", "wen"),
    ("玉", "yu"), ("兰", "lan"), ("春", "chun"), ("梅", "mei"), ("林", "lin"), ("海", "hai"), ("波", "bo"),
    ("辉", "hui"), ("鹏", "peng"), ("宇", "yu"), ("婷", "ting"), ("琳", "lin"), ("浩", "hao"), ("欣", "xin"),
    ("佳", "jia"), ("晓", "xiao"), ("小", "xiao"), ("丹", "dan"), ("飞", "fei"), ("成", "cheng"), ("东", "dong"),
)  # fmt: skip


class PlaceNames:
    """Draws unique place names (zh, en) for streets and communities, in a seeded order."""

    def __init__(self, rng: np.random.Generator):
        pairs = [(h_zh + t_zh, h_en + t_en) for h_zh, h_en in _PLACE_HEADS for t_zh, t_en in _PLACE_TAILS]
        self._pool = [pairs[i] for i in rng.permutation(len(pairs))]
        self._next = 0

    def take(self) -> tuple[str, str]:
        """The next unused (Chinese, English) place name; numbered once the pool runs out."""
        base_zh, base_en = self._pool[self._next % len(self._pool)]
        round_ = self._next // len(self._pool)
        self._next += 1
        if round_ == 0:
            return base_zh, base_en
        # Real cities do this too: 新村二, "No. 2" for the second place of the same name.
        numeral = _NUMERALS_ZH[round_ % 10] if round_ < 10 else str(round_ + 1)
        return f"{base_zh}{numeral}", f"{base_en} No. {round_ + 1}"


def street_names(place: tuple[str, str]) -> tuple[str, str]:
    """(English, Chinese) name of a street (街道) called `place`."""
    zh, en = place
    return f"{en} Subdistrict", f"{zh}街道"


def community_names(place: tuple[str, str]) -> tuple[str, str]:
    """(English, Chinese) name of a community (社区) called `place`."""
    zh, en = place
    return f"{en} Community", f"{zh}社区"


def grid_names(community_en: str, community_zh: str, number: int) -> tuple[str, str]:
    """(English, Chinese) name of the `number`-th grid of a community."""
    return f"{community_en} Grid {number}", f"{community_zh}第{number}网格"


def person_names(rng: np.random.Generator, n: int) -> list[tuple[str, str]]:
    """`n` people's (English, Chinese) names: surname first, as both languages write Chinese names."""
    weights = np.array([w for _, _, w in _SURNAMES])
    surnames = rng.choice(len(_SURNAMES), size=n, p=weights / weights.sum())
    first = rng.integers(0, len(_GIVEN), size=n)
    second = rng.integers(0, len(_GIVEN), size=n)
    two_chars = rng.random(n) < 0.65
    out = []
    for s, a, b, two in zip(surnames.tolist(), first.tolist(), second.tolist(), two_chars.tolist(), strict=True):
        s_zh, s_en, _ = _SURNAMES[s]
        g_zh, g_en = _GIVEN[a][0] + (_GIVEN[b][0] if two else ""), _GIVEN[a][1] + (_GIVEN[b][1] if two else "")
        out.append((f"{s_en} {g_en.capitalize()}", s_zh + g_zh))
    return out
