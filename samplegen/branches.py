"""The default branch reference: a fictitious national bank, 金泉银行.

`python -m samplegen.branches [PATH]` rewrites reference/branches.csv from the table below; the
output is committed, so the build only has to be rerun when the table changes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl
from kesu.reference import BRANCHES

BANK = "金泉银行"
HEADERS = ("机构代码", "机构名称", "上级机构代码", "机构类型", "省份", "城市", "城乡")

# Tier-1 branches: (name part, province, seat city, sub-branches). A sub-branch is a district of
# the seat city, or "city/district" elsewhere in the province; a trailing * marks a county outlet
# (乡镇). The last five are 计划单列市 branches, which report to Beijing like a province does.
TIER1 = (
    ("北京市", "北京市", "北京", "东城 西城 朝阳 海淀 丰台 通州 昌平 密云*"),
    ("天津市", "天津市", "天津", "和平 南开 河西 滨海新区 蓟州*"),
    ("河北省", "河北省", "石家庄", "长安 桥西 唐山/路北 保定/竞秀 邯郸/丛台 正定*"),
    ("山西省", "山西省", "太原", "小店 迎泽 大同/平城 晋中/榆次 清徐*"),
    ("内蒙古自治区", "内蒙古自治区", "呼和浩特", "新城 赛罕 包头/昆都仑 鄂尔多斯/东胜 托克托*"),
    ("辽宁省", "辽宁省", "沈阳", "和平 沈河 皇姑 铁西 鞍山/铁东 锦州/古塔 新民* 法库*"),
    ("吉林省", "吉林省", "长春", "南关 朝阳 吉林/船营 农安*"),
    ("黑龙江省", "黑龙江省", "哈尔滨", "道里 南岗 香坊 大庆/萨尔图 齐齐哈尔/龙沙 五常*"),
    ("上海市", "上海市", "上海", "黄浦 徐汇 静安 浦东新区 闵行 嘉定 崇明*"),
    (
        "江苏省",
        "江苏省",
        "南京",
        "玄武 鼓楼 建邺 苏州/姑苏 无锡/梁溪 常州/天宁 徐州/云龙 无锡/江阴*",
    ),
    ("浙江省", "浙江省", "杭州", "上城 西湖 拱墅 滨江 温州/鹿城 绍兴/越城 金华/婺城 桐庐*"),
    ("安徽省", "安徽省", "合肥", "蜀山 包河 芜湖/镜湖 蚌埠/蚌山 肥西*"),
    ("福建省", "福建省", "福州", "鼓楼 台江 泉州/鲤城 漳州/芗城 泉州/晋江*"),
    ("江西省", "江西省", "南昌", "东湖 西湖 赣州/章贡 九江/浔阳 进贤*"),
    ("山东省", "山东省", "济南", "历下 市中 槐荫 烟台/芝罘 潍坊/奎文 临沂/兰山 潍坊/寿光* 平阴*"),
    ("河南省", "河南省", "郑州", "金水 中原 二七 洛阳/西工 新乡/卫滨 中牟*"),
    ("湖北省", "湖北省", "武汉", "江岸 武昌 洪山 宜昌/西陵 襄阳/樊城 襄阳/谷城*"),
    ("湖南省", "湖南省", "长沙", "芙蓉 天心 岳麓 株洲/天元 衡阳/蒸湘 浏阳*"),
    ("广东省", "广东省", "广州", "天河 越秀 海珠 番禺 佛山/禅城 东莞/东城 珠海/香洲 清远/佛冈*"),
    ("广西壮族自治区", "广西壮族自治区", "南宁", "青秀 兴宁 柳州/城中 桂林/秀峰 宾阳*"),
    ("海南省", "海南省", "海口", "龙华 美兰 三亚/吉阳 琼海*"),
    ("重庆市", "重庆市", "重庆", "渝中 江北 南岸 渝北 九龙坡 万州 石柱*"),
    ("四川省", "四川省", "成都", "锦江 武侯 青羊 成华 绵阳/涪城 德阳/旌阳 南充/顺庆 简阳*"),
    ("贵州省", "贵州省", "贵阳", "南明 云岩 遵义/汇川 息烽*"),
    ("云南省", "云南省", "昆明", "五华 盘龙 官渡 曲靖/麒麟 宜良*"),
    ("西藏自治区", "西藏自治区", "拉萨", "城关 堆龙德庆 日喀则/桑珠孜"),
    ("陕西省", "陕西省", "西安", "雁塔 碑林 新城 未央 宝鸡/渭滨 咸阳/秦都 周至*"),
    ("甘肃省", "甘肃省", "兰州", "城关 七里河 天水/秦州 榆中*"),
    ("青海省", "青海省", "西宁", "城东 城西 城中 大通*"),
    ("宁夏回族自治区", "宁夏回族自治区", "银川", "兴庆 金凤 石嘴山/大武口 永宁*"),
    (
        "新疆维吾尔自治区",
        "新疆维吾尔自治区",
        "乌鲁木齐",
        "天山 沙依巴克 新市 克拉玛依/克拉玛依 昌吉/呼图壁*",
    ),
    ("大连", "辽宁省", "大连", "中山 西岗 沙河口 甘井子 金州 庄河* 瓦房店*"),
    ("青岛", "山东省", "青岛", "市南 市北 崂山 黄岛 胶州* 平度*"),
    ("宁波", "浙江省", "宁波", "海曙 江北 鄞州 北仑 慈溪* 宁海*"),
    ("厦门", "福建省", "厦门", "思明 湖里 集美 海沧 同安*"),
    ("深圳", "广东省", "深圳", "福田 罗湖 南山 宝安 龙岗 龙华 光明"),
)

HEAD_OFFICE = "0000"
CARD_CENTRE = "9800"
SERVICE_CENTRE = "9900"


def branch_rows() -> list[tuple[str | None, ...]]:
    """One row per institution, in code order (总行 first, the two centres last)."""
    rows: list[tuple[str | None, ...]] = [
        (HEAD_OFFICE, f"{BANK}总行", None, "总行", "北京市", "北京市", "城区")
    ]
    for i, (part, province, seat, outlets) in enumerate(TIER1, start=1):
        code = f"{i:02d}00"
        rows.append((code, f"{BANK}{part}分行", HEAD_OFFICE, "分行", province, f"{seat}市", "城区"))
        for j, spec in enumerate(outlets.split(), start=1):
            rural = spec.endswith("*")
            city, _, place = spec.rstrip("*").rpartition("/")
            city = city or seat
            # a county outlet is named after the county alone; a city one after city + district
            name = f"{BANK}{place}支行" if rural or place == city else f"{BANK}{city}{place}支行"
            kind = "乡镇" if rural else "城区"
            rows.append((f"{i:02d}{j:02d}", name, code, "支行", province, f"{city}市", kind))
    rows.append(
        (CARD_CENTRE, f"{BANK}信用卡中心", HEAD_OFFICE, "信用卡中心", "上海市", "上海市", "城区")
    )
    rows.append(
        (SERVICE_CENTRE, f"{BANK}客服中心", HEAD_OFFICE, "客服中心", "安徽省", "合肥市", "城区")
    )
    return rows


def branch_frame() -> pl.DataFrame:
    """One row per institution of the default reference."""
    return pl.DataFrame(branch_rows(), schema={h: pl.String for h in HEADERS}, orient="row")


def write_branches(path: Path = BRANCHES) -> Path:
    path.write_bytes(branch_frame().write_csv().encode("utf-8"))
    return path


if __name__ == "__main__":
    target = write_branches(Path(sys.argv[1]) if len(sys.argv) > 1 else BRANCHES)
    print(f"wrote {target}")
