"""What the PoC report says, in Japanese and English: one source for the signed PDF,
the reviewer pages and the CSV export of each table.

``report_content(figures, ...)`` turns the figures into sections of bilingual
text, tables (raw values: the CSV export writes them as they are) and charts.
Templates only lay it out (``templates/report_body.html``); nothing here
knows about HTML beyond the charts' SVG.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from commonid.audit.charts import horizontal_bars, stacked_bars
from commonid.audit.figures import CARD_COUNTS, FIGURE_SOURCES, PocFigures, Spread, per_day_series
from commonid.audit.merkle import hash_text

JST = timezone(timedelta(hours=9), "JST")
REPORT_FILE = "commonid-poc-report.pdf"  # the signed PDF's name, in the reviewer's commands
Cell = str | int | float | None


@dataclass(frozen=True)
class Text:
    ja: str
    en: str


@dataclass(frozen=True)
class Table:
    key: str  # the CSV export's name: /reviewer/tables/<key>.csv
    title: Text
    columns: tuple[Text, ...]
    rows: list[tuple[Cell, ...]]
    note: Text | None = None

    def csv(self) -> str:
        """The table as CSV: a header naming each column in both languages, raw values;
        UTF-8 with a byte order mark first, so spreadsheets read the Japanese."""
        out = io.StringIO()
        out.write("\ufeff")
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow([f"{column.ja} ({column.en})" for column in self.columns])
        for row in self.rows:
            writer.writerow(["" if cell is None else cell for cell in row])
        return out.getvalue()


@dataclass(frozen=True)
class Chart:
    title: Text
    svg: Text  # drawn once per language (its title and labels); the PDF uses the Japanese


def _chart(title: Text, draw: Callable[[str, str], str]) -> Chart:
    """``draw(title, lang)`` for each language."""
    return Chart(title, Text(draw(title.ja, "ja"), draw(title.en, "en")))


@dataclass
class Section:
    key: str
    title: Text
    paragraphs: list[Text] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    code: str | None = None  # commands a reviewer runs, shown as they are


@dataclass
class ReportContent:
    title: Text
    period: Text
    generated: Text
    service: str
    headline: list[tuple[Text, str]]
    sections: list[Section]

    @property
    def tables(self) -> dict[str, Table]:
        return {table.key: table for section in self.sections for table in section.tables}


def wareki(day: date) -> str:
    """A date as Japanese readers write it: 令和8年12月5日 (元年 for the first year)."""
    if day >= date(2019, 5, 1):
        era, year = "令和", day.year - 2018
    elif day >= date(1989, 1, 8):
        era, year = "平成", day.year - 1988
    else:
        return f"{day.year}年{day.month}月{day.day}日"
    return f"{era}{'元' if year == 1 else year}年{day.month}月{day.day}日"


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value / 1000, 2)


def _spread_row(label: Text, spread: Spread) -> tuple[Cell, ...]:
    """A row of milliseconds shown in seconds."""
    return (
        f"{label.ja} / {label.en}",
        spread.count,
        _seconds(spread.p50),
        _seconds(spread.p90),
        _seconds(spread.p99),
    )


_OUTCOME_NAMES = {
    "verified": Text("本人確認完了", "verified"),
    "reuse_granted": Text("再利用", "reuse granted"),
    "rejected": Text("拒否", "rejected"),
    "reverification_required": Text("再確認が必要", "reverification required"),
    "expired": Text("期限切れ", "expired"),
}


def _outcome_columns(outcomes: list[str]) -> tuple[Text, ...]:
    return tuple(_OUTCOME_NAMES.get(o, Text(o, o)) for o in outcomes)


def _per_key_table(
    key: str, title: Text, first: Text, per: dict[str, dict[str, int]], outcomes: list[str]
) -> Table:
    rows = [
        (name, *(counts.get(o, 0) for o in outcomes), sum(counts.values()))
        for name, counts in per.items()
    ]
    return Table(key, title, (first, *_outcome_columns(outcomes), Text("合計", "total")), rows)


def _scope(figures: PocFigures, period: Text) -> Section:
    modes = ", ".join(f"{mode}: {count}" for mode, count in sorted(figures.modes.items()))
    sources = ", ".join(
        f"{source}: {count}" for source, count in sorted(figures.revocation_sources.items())
    )
    rows: list[tuple[Cell, ...]] = [
        ("期間 / period", f"{period.ja} ({period.en})"),
        ("事業者 / providers", ", ".join(figures.per_provider) or "-"),
        ("窓口端末 / kiosks", ", ".join(k for k in figures.per_kiosk if k != "none") or "-"),
        ("トラストアンカー / trust anchors", ", ".join(sorted(figures.trust_anchors)) or "-"),
        ("失効確認の方法(検証数) / revocation sources (validations)", sources or "-"),
        ("確認の方式(セッション数) / verification modes (sessions)", modes or "-"),
    ]
    return Section(
        "scope",
        Text("1. 範囲と方法", "1. Scope and method"),
        [
            Text(
                "この報告書の数値はすべて、共通IDサービスの検証ログ(追記のみのMerkle木、"
                "署名付きチェックポイント)から、期間内(UTC)に記録されたイベントを数えたものです。"
                "個人を特定する情報はログに記録されず、この報告書にも含まれません。",
                "Every figure in this report counts events of the Common-ID verification log "
                "(an append-only Merkle tree with signed checkpoints) logged within the period "
                "(UTC). The log holds nothing that identifies a person, and neither does this "
                "report.",
            ),
            Text(
                "対象外: 電子証明書に記載された氏名等の正確性(J-LISの責任)、事業者自身の顧客管理"
                "(取引時確認の記録の保存など)、プラットフォーム事業者経由のOCSP、本番規模の負荷。",
                "Out of scope: the accuracy of the attributes in the certificates (J-LIS's), "
                "the providers' own customer due diligence (keeping verification records), "
                "OCSP through a platform operator, production-scale load.",
            ),
        ],
        tables=[
            Table("scope", Text("範囲", "Scope"), (Text("項目", "item"), Text("値", "value")), rows)
        ],
    )


def _outcomes(figures: PocFigures) -> Section:
    outcomes = sorted(figures.outcomes)
    labels, series = per_day_series(figures)
    per_day_rows = [
        (
            day.isoformat(),
            wareki(day),
            *(counts.get(o, 0) for o in outcomes),
            sum(counts.values()),
        )
        for day, counts in figures.per_day.items()
    ]
    reuse = Spread.of(figures.reuse_ages_hours)
    reasons = figures.rejection_reasons.most_common()
    rate = figures.reuse_rate
    per_provider = {
        o: [figures.per_provider[p].get(o, 0) for p in figures.per_provider] for o in outcomes
    }
    return Section(
        "outcomes",
        Text("2. 結果", "2. Outcomes"),
        [
            Text(
                "完了したセッションを結果別に数えています。拒否理由は、1つのセッションにつき"
                "サービスが回答した理由コードで1回だけ数えます。",
                "Completed sessions counted by outcome. A refused session's reason is counted "
                "once, under the code the service answered with.",
            )
        ],
        charts=[
            _chart(
                Text("日別の結果", "Verifications per day by outcome"),
                lambda title, _: stacked_bars(labels, series, title=title),
            ),
            _chart(
                Text("事業者別の結果", "Outcomes per provider"),
                lambda title, _: stacked_bars(
                    list(figures.per_provider), per_provider, title=title, label=str
                ),
            ),
            _chart(
                Text("拒否理由(セッション単位)", "Rejection reasons (once per session)"),
                lambda title, _: horizontal_bars(reasons[:12], title=title),
            ),
        ],
        tables=[
            Table(
                "outcomes_per_day",
                Text("日別の結果", "Outcomes per day"),
                (
                    Text("日付", "date"),
                    Text("和暦", "Japanese era date"),
                    *_outcome_columns(outcomes),
                    Text("合計", "total"),
                ),
                per_day_rows,
            ),
            _per_key_table(
                "outcomes_per_provider",
                Text("事業者別の結果", "Outcomes per provider"),
                Text("事業者", "provider"),
                figures.per_provider,
                outcomes,
            ),
            _per_key_table(
                "outcomes_per_kiosk",
                Text("窓口端末別の結果", "Outcomes per kiosk"),
                Text("窓口端末", "kiosk"),
                {
                    # Sessions no kiosk took part in (expired before anyone came).
                    ("窓口なし / no kiosk" if kiosk == "none" else kiosk): counts
                    for kiosk, counts in figures.per_kiosk.items()
                },
                outcomes,
            ),
            Table(
                "reuse",
                Text("再利用と再利用された情報の鮮度", "Reuse and the freshness of reused claims"),
                (Text("項目", "item"), Text("値", "value")),
                [
                    ("情報提供の回数 / claim releases", figures.claims_released),
                    ("うち再利用 / of which reuse", figures.claims_reused),
                    (
                        "再利用率 / reuse rate",
                        None if rate is None else round(rate * 100, 1),
                    ),
                    ("本人確認からの経過 中央値(時間) / age at reuse p50 (hours)", _h(reuse.p50)),
                    ("本人確認からの経過 90%(時間) / age at reuse p90 (hours)", _h(reuse.p90)),
                ],
                Text("再利用率は百分率。", "The reuse rate is a percentage."),
            ),
            Table(
                "rejection_reasons",
                Text("拒否理由(セッション単位)", "Rejection reasons (once per session)"),
                (Text("理由コード", "reason code"), Text("セッション数", "sessions")),
                list(reasons),
            ),
            Table(
                "consent",
                Text("同意の拒否と撤回", "Consent declined and withdrawn"),
                (Text("項目", "item"), Text("件数", "count")),
                [
                    ("窓口で同意しなかった / declined at the kiosk", figures.consent_declined),
                    ("同意の撤回 / consent withdrawn", figures.consent_withdrawn),
                ],
            ),
        ],
    )


def _h(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _times(figures: PocFigures) -> Section:
    rows = [
        _spread_row(Text("窓口での所要時間", "kiosk visit"), Spread.of(figures.visit_ms)),
        _spread_row(Text("うちカード", "of which the card"), Spread.of(figures.visit_card_ms)),
        _spread_row(
            Text("うちサービス待ち", "of which waiting for the service"),
            Spread.of(figures.visit_service_ms),
        ),
        _spread_row(
            Text("サービスの検証時間", "service verification time"),
            Spread.of(figures.verification_ms),
        ),
        _spread_row(
            Text("セッション作成から完了まで", "session created to completed"),
            Spread.of(figures.latencies_ms),
        ),
    ]
    return Section(
        "times",
        Text("3. 所要時間", "3. Time"),
        [
            Text(
                "窓口の値は窓口端末が計測したもの(照会から結果表示まで)、サービスの検証時間は"
                "カード応答の受信から記録まで(メトリクス commonid_verification_seconds と同じ区間)"
                "です。単位は秒、百分位数は最近順位法。",
                "Kiosk times are measured by the kiosk (look-up to result); the service "
                "verification time runs from receiving the card response to recording it (the "
                "interval of the commonid_verification_seconds metric). Seconds; nearest-rank "
                "percentiles.",
            )
        ],
        tables=[
            Table(
                "times",
                Text("所要時間(秒)", "Time (seconds)"),
                (
                    Text("計測", "measure"),
                    Text("件数", "count"),
                    Text("中央値", "p50"),
                    Text("90%", "p90"),
                    Text("99%", "p99"),
                ),
                rows,
            )
        ],
    )


_CARD_NAMES = {
    "pin_wrong": Text("暗証番号の誤り(利用者証明用)", "wrong PIN (authentication)"),
    "password_wrong": Text("暗証番号の誤り(署名用)", "wrong password (signature)"),
    "last_try_confirmed": Text("残り1回での確認", "last-try confirmations"),
    "card_blocked": Text("ロックされたカード", "blocked cards"),
    "card_removed": Text("途中でのカードの取り外し", "cards removed mid-flow"),
}


def _card(figures: PocFigures) -> Section:
    counts = [(_CARD_NAMES[name], figures.card_counts.get(name, 0)) for name in CARD_COUNTS]
    return Section(
        "card",
        Text("4. 窓口でのカード", "4. The card at the kiosk"),
        [
            Text(
                "窓口端末が報告した件数のみです。誰のカードかを示す情報はありません。",
                "Counts reported by the kiosks, nothing that identifies a person or a card.",
            )
        ],
        charts=[
            _chart(
                Text("窓口でのカード", "The card at the kiosk"),
                lambda title, lang: horizontal_bars(
                    [(name.en if lang == "en" else name.ja, count) for name, count in counts],
                    title=title,
                ),
            )
        ],
        tables=[
            Table(
                "card_at_kiosk",
                Text("窓口でのカード", "The card at the kiosk"),
                (Text("項目", "item"), Text("件数", "count")),
                [("窓口の利用 / kiosk visits", figures.visits)]
                + [(f"{name.ja} / {name.en}", count) for name, count in counts],
            ),
            Table(
                "visit_outcomes",
                Text("窓口の利用の終わり方", "How kiosk visits ended"),
                (Text("結果コード", "outcome code"), Text("件数", "visits")),
                figures.visit_outcomes.most_common(),
            ),
        ],
    )


def _revocation(figures: PocFigures) -> Section:
    rows: list[tuple[Cell, ...]] = []
    for anchor, track in sorted(figures.revocation.items()):
        largest, at_end = track.ages_hours(figures.observed_until)
        rows.append(
            (
                anchor,
                len(track.installed),
                round(largest, 1) if track.installed else None,
                round(at_end, 1) if track.installed else None,
                track.revoked_count,
            )
        )
    return Section(
        "revocation",
        Text("5. 失効情報", "5. Revocation"),
        [
            Text(
                "失効情報の経過時間は、更新処理がCRLを取り込むたびに記録したthisUpdateから、"
                "次のCRLを取り込むまで(または期間末、ただし署名付きチェックポイントの時刻まで)の"
                "時間です。",
                "The age of revocation data runs from the thisUpdate of each CRL the refresher "
                "installed to the next installation (or the end of the period, at most the "
                "signed checkpoint's time).",
            )
        ],
        tables=[
            Table(
                "revocation_data",
                Text("失効情報の鮮度", "Revocation data age"),
                (
                    Text("トラストアンカー", "trust anchor"),
                    Text("取り込んだCRL", "lists installed"),
                    Text("最大経過(時間)", "largest age (hours)"),
                    Text("期間末の経過(時間)", "age at the end (hours)"),
                    Text("最新CRLの失効件数", "entries on the latest list"),
                ),
                rows,
            ),
            Table(
                "revocation_events",
                Text("失効の発見と通知", "Revocations found and notified"),
                (Text("項目", "item"), Text("件数", "count")),
                [
                    (
                        "失効により拒否したセッション / sessions refused as revoked",
                        figures.revocations_found,
                    ),
                    ("失効したクレデンシャル / credentials revoked", figures.credentials_revoked),
                    ("配信したWebhook / webhooks delivered", figures.webhooks_delivered),
                    ("配信できなかったWebhook / webhooks failed", figures.webhooks_failed),
                ],
            ),
        ],
    )


def _trust(figures: PocFigures) -> Section:
    checkpoint = figures.checkpoint
    rows: list[tuple[Cell, ...]] = []
    if checkpoint is not None:
        rows = [
            ("ログのサイズ(エントリ数) / log size (entries)", checkpoint.tree_size),
            ("ルートハッシュ / root hash", hash_text(checkpoint.root_hash)),
            ("チェックポイントの署名日時 / checkpoint signed", checkpoint.created_at.isoformat()),
            ("期間内に数えたイベント / events counted in the period", figures.events_read),
        ]
    appendix = [(name, "; ".join(sources)) for name, sources in FIGURE_SOURCES.items()]
    commands = "\n".join(
        [
            "# 1. ログを取得し、署名付きチェックポイントで全体を検証する"
            " / export and verify the log",
            "commonid audit export log.jsonl",
            "commonid audit verify --export log.jsonl --key '<checkpoint verifier key>'",
            "# 2. 任意のエントリの包含証明 / prove any single entry",
            f"commonid audit prove <index> --tree-size {checkpoint.tree_size if checkpoint else 0}",
            "# 3. 報告書の署名(長期検証) / the report's signature (long-term validation)",
            f"pyhanko sign adesverify --trust organisation-root.pem --trust-replace {REPORT_FILE}",
            "pdfsig " + REPORT_FILE,
        ]
    )
    return Section(
        "trust",
        Text("6. 数値の信頼性", "6. Trust in the figures"),
        [
            Text(
                "数値は下記の署名付きチェックポイントが対象とするエントリだけから計算しています。"
                "ログのエクスポートを持つ人は誰でも、同じ数値を再計算し、ログが改ざんされていない"
                "ことを検証できます。付録は各数値が数えるイベントの種類です。",
                "The figures are computed from the entries the signed checkpoint below covers "
                "only. Anyone holding an export of the log can recompute them and check that "
                "the log was not changed. The appendix lists the event types each figure "
                "counts.",
            )
        ],
        tables=[
            Table(
                "checkpoint",
                Text("対象のチェックポイント", "The checkpoint covered"),
                (Text("項目", "item"), Text("値", "value")),
                rows,
            ),
            Table(
                "figure_sources",
                Text("付録: 数値とイベントの種類", "Appendix: figures and the events they count"),
                (
                    Text("数値", "figure"),
                    Text("イベントの種類(フィールド)", "event types (fields)"),
                ),
                appendix,
            ),
        ],
        code=commands,
    )


def _goals(figures: PocFigures) -> Section:
    met, not_met, no_data = "達成 / met", "未達 / not met", "データなし / no data"
    verified = figures.outcomes.get("verified", 0)
    visit_p50 = Spread.of(figures.visit_ms).p50
    ages = [track.ages_hours(figures.observed_until)[0] for track in figures.revocation.values()]
    covered = figures.checkpoint is not None and figures.events_read > 0
    rows: list[tuple[Cell, ...]] = [
        (
            "JPKIで非対面の本人確認が完結する / JPKI completes a remote identity verification",
            "本人確認完了 ≥ 1 / verified ≥ 1",
            verified,
            met if verified else (no_data if not figures.verifications else not_met),
        ),
        (
            "確認済みの本人情報を同意のうえ他事業者が再利用できる / "
            "another provider reuses a verified identity with consent",
            "再利用 ≥ 1 / reuse ≥ 1",
            figures.claims_reused,
            met if figures.claims_reused else (no_data if not figures.claims_released else not_met),
        ),
        (
            "失効情報を日次で確認する / revocation data is at most a day old (+ a day's window)",
            "最大経過 ≤ 48時間 / largest age ≤ 48 h",
            None if not ages else round(max(ages), 1),
            no_data if not ages else (met if max(ages) <= 48 else not_met),
        ),
        (
            "窓口の手続きが短い / the kiosk visit is short",
            "中央値 ≤ 180秒 / median ≤ 180 s",
            _seconds(visit_p50),
            no_data if visit_p50 is None else (met if visit_p50 <= 180_000 else not_met),
        ),
        (
            "数値を第三者が検証できる / a third party can check the figures",
            "署名付きチェックポイントが期間のイベントを含む / "
            "a signed checkpoint covers the period's events",
            figures.checkpoint.tree_size if figures.checkpoint else None,
            met if covered else no_data,
        ),
    ]
    return Section(
        "goals",
        Text("7. PoCの目標との対照", "7. Against the PoC's goals"),
        [
            Text(
                "ワーキンググループが示そうとしたことと、この期間に示されたこと。",
                "What the working group set out to show, and what the period showed.",
            )
        ],
        tables=[
            Table(
                "goals",
                Text("目標との対照", "Against the goals"),
                (
                    Text("目標", "goal"),
                    Text("基準", "target"),
                    Text("実績", "shown"),
                    Text("判定", "status"),
                ),
                rows,
            )
        ],
    )


def report_content(
    figures: PocFigures,
    *,
    service: str,
    generated: datetime,
) -> ReportContent:
    first = figures.start.date()
    last = (figures.end - timedelta(days=1)).date()
    period = Text(
        f"{wareki(first)}〜{wareki(last)}",
        f"{first.isoformat()} to {last.isoformat()} (UTC days)",
    )
    local = generated.astimezone(JST)
    rate = figures.reuse_rate
    visit = Spread.of(figures.visit_ms)
    headline = [
        (Text("完了したセッション", "completed sessions"), str(figures.verifications)),
        *((_OUTCOME_NAMES.get(o, Text(o, o)), str(c)) for o, c in sorted(figures.outcomes.items())),
        (
            Text("再利用率", "reuse rate"),
            "–" if rate is None else f"{rate * 100:.0f}%",
        ),
        (
            Text("窓口の所要時間 中央値", "kiosk visit, median"),
            "–" if visit.p50 is None else f"{visit.p50 / 1000:.0f} s",
        ),
        (Text("失効により拒否", "refused as revoked"), str(figures.revocations_found)),
    ]
    return ReportContent(
        title=Text("共通ID 実証実験(PoC)結果報告書", "Common-ID proof of concept: results"),
        period=period,
        generated=Text(
            f"{wareki(local.date())} {local:%H:%M} JST 作成",
            f"generated {generated.isoformat(timespec='seconds')}",
        ),
        service=service,
        headline=headline,
        sections=[
            _scope(figures, period),
            _outcomes(figures),
            _times(figures),
            _card(figures),
            _revocation(figures),
            _trust(figures),
            _goals(figures),
        ],
    )
