"""Free text of tickets and transfers: what customers say, with the mess real text carries."""

from __future__ import annotations

import numpy as np
from kesu.transforms.columns import COMPLAINT_TYPES

_, OPINION, PRAISE = COMPLAINT_TYPES

# What goes wrong, by 业务类别; phrases separated by "|".
_ISSUES = {
    "B01": "定期存款到期后未按约定自动转存|存款利率与网点宣传的不一致|存折补登时余额显示有误",
    "B02": "借记卡被限制非柜面交易，无法正常转账|借记卡在ATM取款时被吞卡|"
    "借记卡被扣收小额账户管理费{amount}元|借记卡非柜面交易限额被调低至每日{amount}元",
    "B03": "信用卡账单中出现一笔{amount}元的年费，事先未收到任何提醒|信用卡额度被无故降低|"
    "办理信用卡分期后手续费与客户经理介绍的不一致|已按时还款仍被收取{amount}元利息|"
    "信用卡被盗刷{amount}元，申请调单后迟迟没有结果|信用卡积分兑换的礼品一直未发货",
    "B04": "提前还款被收取违约金{amount}元|房贷利率未按约定调整|贷款审批时间过长，耽误了购房|"
    "消费贷款实际年化利率高于宣传",
    "B05": "跨行转账{amount}元迟迟未到账|汇款被退回且被收取手续费|"
    "快捷支付被扣款{amount}元但订单未成功",
    "B06": "理财产品收益低于业绩比较基准|购买理财前未进行风险测评|理财产品到期后资金延迟到账",
    "B07": "网点人员推销保险时称是存款产品|代销基金亏损{amount}元，购买时未充分揭示风险",
    "B08": "购汇额度查询结果与实际不符|境外汇款手续费过高",
    "B09": "积存金赎回价格与页面显示不一致",
    "B10": "未经本人同意查询了本人征信|个人信息疑似泄露，频繁接到推销电话|"
    "征信报告出现不属于本人的逾期记录",
    "B11": "网点拒收硬币|取款时收到残损人民币",
    "B12": "催收人员频繁拨打本人及家人电话|催收时言语威胁，影响正常工作|"
    "第三方催收机构冒充律师发送短信",
    "B13": "代缴税款扣款后未显示缴费成功",
    "B14": "开具资信证明收费{amount}元，收费标准未公示",
    "B99": "网点排队等候时间过长|大堂经理服务态度冷淡|网点停车位被占用无人管理",
}


def phrases(text: str) -> list[str]:
    return text.split("|")


ISSUES = {code: phrases(text) for code, text in _ISSUES.items()}
OPENINGS = phrases(
    "客户来电反映：|客户称，|客户到网点反映|客户通过手机银行留言：|客户{name}反映，|"
)
DEMANDS = phrases(
    "要求退还相关费用。|要求银行给予合理解释。|要求尽快处理并回电。|希望核实后予以更正。|"
    "要求赔偿损失。|要求追究相关人员责任。|要求停止骚扰。"
)
QUOTES = phrases("这是保本的|系统问题我们也没办法|你去找总行|明天再来")
OPINIONS = phrases(
    "建议网点增加周末营业时间|建议手机银行转账页面显示手续费|建议热线缩短人工等待时间|"
    "建议老年客户专窗常态化开放|建议信用卡账单增加分期明细"
)
PRAISES = phrases(
    "客户表扬网点工作人员服务热情，帮助找回遗失的银行卡|客户表扬热线坐席耐心解答问题|"
    "客户表扬大堂经理及时识破电信诈骗，避免了资金损失"
)
# Spreadsheet-injection test data: text a careless export would turn into a formula.
INJECTIONS = ["=", "+", '=HYPERLINK("http://example.com","详情")', "+86 "]


def _money(rng: np.random.Generator, n: int) -> list[str]:
    # the thousands separator puts an ASCII comma into the text
    return [f"{v:,.2f}" for v in np.round(rng.lognormal(6.5, 1.4, n), 2).tolist()]


def _one(pool: list[str], u: float) -> str:
    return pool[int(u * len(pool))]


def complaint_texts(
    rng: np.random.Generator,
    ticket_type: list[str],
    category: list[str | None],
    name: list[str],
    phone: list[str],
    id_number: list[str],
) -> list[str]:
    """What each customer complained about, as an agent typed it."""
    n = len(ticket_type)
    draws, money = rng.random((n, 12)).tolist(), _money(rng, n)
    out = []
    for t, c, nm, ph, idn, u, amount in zip(
        ticket_type, category, name, phone, id_number, draws, money, strict=True
    ):
        if t == PRAISE:
            text = _one(PRAISES, u[0]) + "。"
        elif t == OPINION:
            text = _one(OPINIONS, u[0]) + "。"
        else:
            text = _one(OPENINGS, u[1]) + _one(ISSUES.get(c or "B99", ISSUES["B99"]), u[0])
            if u[2] < 0.12:
                text += f'，工作人员称"{_one(QUOTES, u[3])}"'
            text += "，" + _one(DEMANDS, u[4])
        text = text.format(name=nm, amount=amount)
        if u[5] < 0.2:
            text += f"联系电话：{ph}。"
        if u[6] < 0.08:
            text += f"客户身份证号{idn}。"
        if u[7] < 0.1:
            text += "\n处理要求：" + _one(DEMANDS, u[8])
        if u[9] < 0.006:
            injection = _one(INJECTIONS, u[10])
            text = injection + (ph + "来电，" if injection == "+86 " else "") + text
        out.append(text)
    return out


def transfer_texts(
    rng: np.random.Generator, category: list[str], name: list[str], phone: list[str]
) -> list[str]:
    """The complaint as the regulator's platform summarised it."""
    n = len(category)
    draws, money = rng.random((n, 3)).tolist(), _money(rng, n)
    out = []
    for c, nm, ph, u, amount in zip(category, name, phone, draws, money, strict=True):
        issue = _one(ISSUES.get(c, ISSUES["B99"]), u[0]).format(amount=amount)
        text = f"投诉人{nm}反映：{issue}，{_one(DEMANDS, u[1])}"
        out.append(text + (f"联系电话{ph}。" if u[2] < 0.3 else ""))
    return out
