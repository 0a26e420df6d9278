// The kiosk page. It shows the step the agent says it is at; the agent holds the
// session and the card. A PIN or password lives here only while it is typed: it
// is sent once and the local copy is cleared at once.
"use strict";
(() => {
  const TEXT = {
    ja: {
      brand: "マイナンバーカードで本人確認", cancel: "中止する", next: "次へ",
      start_title: "受付番号を入力してください",
      start_lead: "申込み先から案内された8桁の受付番号です（係員が入力します）。",
      consent_title: "次の事業者が本人確認を求めています", provider: "依頼元", purpose: "利用目的",
      claims: "提供する情報", method: "確認の方法", signed_summary: "カードが署名する内容",
      agree: "同意する", disagree: "同意しない",
      insert_title: "マイナンバーカードをリーダーに置いてください",
      insert_lead: "確認が終わるまで、カードを置いたままにしてください。", read_again: "もう一度読み取る",
      pin_title: "利用者証明用暗証番号（数字4桁）を入力してください",
      password_title: "署名用パスワード（英数字6〜16桁）を入力してください",
      tries_left: "残り回数", confirm: "確認", times: "回",
      last_try_title: "残り1回です",
      last_try_text: "間違えるとロックされ、市区町村の窓口での手続きが必要になります。",
      last_try_dialog_title: "本当に続けますか？",
      last_try_dialog_text: "残り1回です。入力が間違っていると、カードのこの機能はロックされ、このカードでは本人確認ができなくなります。",
      back: "戻る", last_try_go: "理解して続ける",
      progress_title: "カードを読み取っています", progress_lead: "カードを動かさないでください。",
      done: "終了", clear: "消去", delete: "1字消す",
      wallet_title: "スマートフォンのウォレットに保存できます", wallet_code: "ウォレットに入力する番号",
      key_binding_title: "カードで提示します。利用者証明用暗証番号（数字4桁）を入力してください",
      key_binding_to: "提示先", key_binding_claims: "提示する項目",
      wallet_link: "このリンクをスマートフォンで開く",
      reader_none: "カードリーダーが見つかりません", reader_service: "カードサービスに接続できません",
      card_present: "カードあり", card_absent: "カードなし",
      idle_title: "操作を続けますか？", idle_before: "操作がないため、まもなく最初の画面に戻ります。", seconds: "秒",
      take_card: "カードをお取りください", take_card_lead: "カードがリーダーに残っています。",
      pin_count: (n) => `4桁中${n}桁入力済み`, secret_count: (n) => `${n}文字入力済み`,
      readers: "カードリーダー（選ぶと切り替わります）", reader_chosen: "使用中", reader_missing: "選ばれたカードリーダーが接続されていません",
      reader_card_none: "カードなし", reader_card_checking: "確認中", reader_card_my_number_card: "マイナンバーカード",
      reader_card_other: "マイナンバーカード以外のカード", reader_card_unreadable: "読み取れないカード",
      claim_name: "氏名", claim_birthdate: "生年月日", claim_gender: "性別", claim_address: "住所",
      claim_did: "デジタルID（DID）", claim_credential: "本人確認済みの証明（VC）",
      claim_none: "本人であることの確認のみ（個人情報は提供しません）",
      method_identity: "署名用電子証明書（署名用パスワード）と利用者証明用電子証明書（暗証番号4桁）で確認します。",
      method_auth: "利用者証明用電子証明書（暗証番号4桁）で確認します。",
      method_reuse: "暗証番号4桁のみで確認し、以前に確認済みの情報を提供します。",
      method_document: "本人確認の後、同意書に署名用パスワードで電子署名していただきます。",
      document_title: "同意書に電子署名してください",
      document_lead: "本人確認は完了しました。次の同意書に、署名用電子証明書で電子署名します。",
      document_heading: "本人確認に関する同意書", document_date: "作成日時",
      document_statement: "私は、上記の利用目的のため、上記の情報が依頼元に提供されることに同意します。",
      document_password: "署名用パスワード（英数字6〜16桁）を入力して「署名する」を押してください。",
      document_id: "文書番号", sign: "署名する", decline_sign: "署名しない",
      document_disclosed: "署名した文書は依頼元に渡され、署名用電子証明書の氏名・生年月日・性別・住所が依頼元に開示されます。",
      document_withheld: "署名した文書は依頼元に渡されません（証明書には同意より多くの情報が含まれるため）。依頼元には Common-ID が署名を確認した結果だけが渡されます。",
    },
    en: {
      brand: "Identity check with your My Number Card", cancel: "Cancel", next: "Next",
      start_title: "Enter the request code",
      start_lead: "The 8-character code the provider gave you (entered by the staff).",
      consent_title: "This provider asks to verify your identity", provider: "Requested by",
      purpose: "Purpose", claims: "Information shared", method: "How", signed_summary: "What the card signs",
      agree: "I agree", disagree: "I do not agree",
      insert_title: "Put your My Number Card on the reader",
      insert_lead: "Leave the card there until the check is finished.", read_again: "Read again",
      pin_title: "Enter your user authentication PIN (4 digits)",
      password_title: "Enter your signature password (6 to 16 letters or digits)",
      tries_left: "Tries left", confirm: "OK", times: "",
      last_try_title: "One try left",
      last_try_text: "A wrong entry locks it; unlocking needs a visit to your municipal office.",
      last_try_dialog_title: "Do you really want to continue?",
      last_try_dialog_text: "This is the last try. If the entry is wrong, this function of the card is locked and the card cannot be used for identity checks.",
      back: "Back", last_try_go: "I understand, continue",
      progress_title: "Reading the card", progress_lead: "Please do not move the card.",
      done: "Done", clear: "Clear", delete: "Delete",
      wallet_title: "Keep it in your phone's wallet", wallet_code: "Code to type in the wallet",
      key_binding_title: "Present with your card: enter your PIN (4 digits)",
      key_binding_to: "To", key_binding_claims: "What is shown",
      wallet_link: "Open this link on your phone",
      reader_none: "No card reader found", reader_service: "The smart card service is not available",
      card_present: "card present", card_absent: "no card",
      idle_title: "Do you want to continue?", idle_before: "No activity: the screen goes back to the start soon.", seconds: "s",
      take_card: "Please take your card", take_card_lead: "Your card is still on the reader.",
      pin_count: (n) => `${n} of 4 digits entered`, secret_count: (n) => `${n} characters entered`,
      readers: "Card readers (choose one to switch)", reader_chosen: "in use", reader_missing: "The chosen card reader is not connected",
      reader_card_none: "no card", reader_card_checking: "checking", reader_card_my_number_card: "My Number Card",
      reader_card_other: "not a My Number Card", reader_card_unreadable: "unreadable card",
      claim_name: "Name", claim_birthdate: "Date of birth", claim_gender: "Gender", claim_address: "Address",
      claim_did: "Digital ID (DID)", claim_credential: "Verified identity credential (VC)",
      claim_none: "Only that you are you (no personal information is shared)",
      method_identity: "With your signature certificate (signature password) and your authentication certificate (4-digit PIN).",
      method_auth: "With your authentication certificate (4-digit PIN).",
      method_reuse: "With your 4-digit PIN only; information verified earlier is shared.",
      method_document: "After the check you sign a consent document with your signature password.",
      document_title: "Please sign the consent document",
      document_lead: "Your identity has been verified. You now sign this document with your signature certificate.",
      document_heading: "Consent to identity verification", document_date: "Date",
      document_statement: "I agree that the information above is provided to the requester for the purpose above.",
      document_password: "Enter your signature password (6 to 16 letters or digits) and press Sign.",
      document_id: "Document", sign: "Sign", decline_sign: "Don't sign",
      document_disclosed: "The signed document goes to the requester: its signature certificate discloses your name, date of birth, gender and address.",
      document_withheld: "The signed document is not given to the requester (its certificate carries more than you consent to): the requester receives only Common-ID's confirmation of your signature.",
    },
  };
  const $ = (id) => document.getElementById(id);
  const SCREENS = ["start", "consent", "insert_card", "pin", "password", "document", "progress", "result"];
  // Secret entries: where each goes, and under which field (the document takes the password again).
  const SECRET_PATHS = { pin: "pin", password: "password", document: "document" };
  const SECRET_FIELDS = { pin: "pin", password: "password", document: "password" };
  const ALPHANUMERIC = "1234567890QWERTYUIOPASDFGHJKLZXCVBNM".split("");
  const LIMITS = { code: 9, pin: 4, password: 16, document: 16 };

  let lang = "ja";
  let view = { step: "start" };
  let reader = { card_present: false, reader: null, service_available: false, readers: [] };
  const entries = { code: [], pin: [], password: [], document: [] };
  let busy = false;
  let checkingCard = false;
  let timeoutSeconds = 90;
  let lastTouch = Date.now();
  let lastPing = 0;
  let pendingSecret = null; // "pin" | "password" | "document" waiting for the last-try confirmation
  let cardToTake = false; // a session ended with the card still on the reader

  const t = (key) => TEXT[lang][key] ?? TEXT.ja[key] ?? key;

  function applyLanguage() {
    document.documentElement.lang = lang;
    for (const element of document.querySelectorAll("[data-i18n]")) {
      element.textContent = t(element.dataset.i18n);
    }
    $("lang-toggle").textContent = lang === "ja" ? "English" : "日本語";
    buildKeys();
    render(view);
    renderReader();
  }

  // --- entry pads ----------------------------------------------------------------

  function key(label, onPress, extraClass, testId, ariaLabel) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = label;
    if (ariaLabel) button.setAttribute("aria-label", ariaLabel);
    if (extraClass) button.className = extraClass;
    if (testId) button.dataset.testid = testId;
    button.addEventListener("click", onPress);
    return button;
  }

  function buildKeys() {
    const pad = $("pin-pad");
    pad.replaceChildren();
    for (const digit of "123456789") pad.append(key(digit, () => type("pin", digit), "", `pin-key-${digit}`));
    pad.append(key(t("clear"), () => clearEntry("pin"), "wide", "pin-clear"));
    pad.append(key("0", () => type("pin", "0"), "", "pin-key-0"));
    pad.append(key("⌫", () => erase("pin"), "wide", "pin-delete", t("delete")));
    for (const [id, target] of [["code-keyboard", "code"], ["password-keyboard", "password"], ["document-keyboard", "document"]]) {
      const board = $(id);
      board.replaceChildren();
      for (const character of ALPHANUMERIC) {
        board.append(key(character, () => type(target, character), "", `${target}-key-${character}`));
      }
      board.append(key(t("clear"), () => { clearEntry(target); codeEdited(target); }, "wide", `${target}-clear`));
      board.append(key("⌫", () => erase(target), "wide", `${target}-delete`, t("delete")));
    }
  }

  function type(target, character) {
    if (entries[target].length < LIMITS[target]) entries[target].push(character);
    showEntry(target);
    codeEdited(target);
  }
  function erase(target) { entries[target].pop(); showEntry(target); codeEdited(target); }
  function clearEntry(target) { entries[target].length = 0; showEntry(target); }

  // A notice about the last code (not found, used) is stale once staff edit the code.
  function codeEdited(target) {
    if (target !== "code" || view.step !== "start" || !view.notice) return;
    render({ ...view, notice: null });
    act("/api/session/cancel");
  }
  function clearSecrets() { clearEntry("pin"); clearEntry("password"); clearEntry("document"); }

  function showEntry(target) {
    const entry = entries[target];
    if (target === "code") {
      const text = entry.join("");
      $("code-display").textContent = text.length > 4 ? `${text.slice(0, 4)}-${text.slice(4)}` : text;
      $("code-submit").disabled = entry.length < 8;
      return;
    }
    // Secrets are shown as dots only: never their characters.
    const display = $(`${target}-display`);
    display.replaceChildren();
    const slots = target === "pin" ? 4 : Math.max(6, entry.length);
    for (let index = 0; index < slots; index++) {
      const dot = document.createElement("span");
      dot.className = index < entry.length ? "dot filled" : "dot";
      dot.setAttribute("aria-hidden", "true");
      display.append(dot);
    }
    // What a screen reader says (the display is a status region): how many, never which.
    const count = document.createElement("span");
    count.className = "visually-hidden";
    count.dataset.testid = `${target}-count`;
    count.textContent = target === "pin" ? t("pin_count")(entry.length) : t("secret_count")(entry.length);
    display.append(count);
    $(`${target}-submit`).disabled = target === "pin" ? entry.length !== 4 : entry.length < 6;
  }

  // --- talking to the agent ----------------------------------------------------------

  async function call(path, body) {
    const response = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body ?? {}),
      cache: "no-store",
    });
    const data = await response.json();
    if (response.status === 409 && data.state) return data.state;
    if (!response.ok) throw new Error(data.detail || response.statusText);
    return data;
  }

  async function act(path, body, { progress = false } = {}) {
    if (busy) return;
    busy = true;
    if (progress) showScreen("progress");
    try {
      render(await call(path, body));
    } catch (error) {
      render({ ...view, notice: { code: "agent", title_ja: "エラーが発生しました", title_en: "Something went wrong", advice_ja: "係員にお声がけください。", advice_en: "Please ask the staff." } });
    } finally {
      busy = false;
      lastTouch = Date.now();
    }
    // The card may already be on the reader when the page gets to this step.
    if (view.step === "insert_card" && reader.card_present && !view.notice) checkCard();
  }

  function entryId() {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function sendSecret(kind, confirmLastTry) {
    // Take the entry out of the page before anything else happens.
    const secret = entries[kind].join("");
    clearEntry(kind);
    const body = { entry_id: entryId(), confirm_last_try: confirmLastTry };
    body[SECRET_FIELDS[kind]] = secret;
    act(`/api/session/${SECRET_PATHS[kind]}`, body, { progress: true });
  }

  function submitSecret(kind) {
    if (triesLeft(kind) === 1) {
      pendingSecret = kind;
      $("last-try-dialog").hidden = false;
      return;
    }
    sendSecret(kind, false);
  }

  function triesLeft(kind) {
    if (!view.card) return null;
    return kind === "pin" ? view.card.auth_tries_left : view.card.sign_tries_left; // password, document
  }

  function checkCard() {
    if (checkingCard || busy) return;
    checkingCard = true;
    act("/api/session/card", {}, { progress: true }).finally(() => { checkingCard = false; });
  }

  // --- rendering ---------------------------------------------------------------------

  // A wallet's card-bound presentation asks for the PIN on the PIN screen.
  const screenOf = (step) => (step === "key_binding" ? "pin" : step);

  function showScreen(step) {
    for (const name of SCREENS) $(`screen-${name}`).hidden = name !== screenOf(step);
    $("cancel").hidden = step === "start" || step === "result" || step === "progress";
  }

  function localized(item, field) { return item[`${field}_${lang}`] ?? item[`${field}_ja`] ?? ""; }

  function render(next) {
    const previousStep = view.step;
    view = next;
    showScreen(view.step);
    if (view.step !== previousStep) {
      clearSecrets();
      $("last-try-dialog").hidden = true;
      pendingSecret = null;
    }
    if (view.step === "start" && previousStep !== "start") clearEntry("code");
    if (view.step !== previousStep) stepShown(view.step);
    // Readers can be switched on the start screen only.
    if ((view.step === "start") !== (previousStep === "start")) renderReaderList();

    const notice = view.notice;
    $("notice").hidden = !notice;
    if (notice) {
      $("notice-title").textContent = localized(notice, "title");
      $("notice-advice").textContent = localized(notice, "advice")
        + (notice.tries_left != null && notice.tries_left > 0 ? ` (${t("tries_left")}: ${notice.tries_left})` : "");
    }

    const session = view.session;
    if (session) {
      $("provider-name").textContent = session.provider_name;
      $("purpose").textContent = session.purpose;
      const list = $("claims");
      list.replaceChildren();
      const shown = session.claims.length ? session.claims.map((c) => t(`claim_${c}`)) : [t("claim_none")];
      for (const label of shown) {
        const item = document.createElement("li");
        item.textContent = label;
        list.append(item);
      }
      $("method").textContent = t(session.mode === "identity" ? "method_identity" : session.reuse ? "method_reuse" : "method_auth")
        + (session.document ? ` ${t("method_document")}` : "");
      $("challenge").textContent = JSON.stringify(session.challenge, null, 2);
    }

    const documentShown = view.document;
    if (documentShown) {
      $("document-provider").textContent = documentShown.provider_name;
      $("document-purpose").textContent = documentShown.purpose;
      const list = $("document-claims");
      list.replaceChildren();
      const shown = documentShown.claims.length ? documentShown.claims.map((c) => t(`claim_${c}`)) : [t("claim_none")];
      for (const label of shown) {
        const item = document.createElement("li");
        item.textContent = label;
        list.append(item);
      }
      const created = new Date(documentShown.created_at);
      $("document-date").textContent = created.toLocaleString(lang === "ja" ? "ja-JP" : "en-GB", { timeZone: "Asia/Tokyo", dateStyle: "long", timeStyle: "short" }) + " JST";
      document.querySelector('[data-testid="document-id"]').textContent = `${t("document_id")}: ${documentShown.document_id}`;
      $("document-disclosure").textContent = t(documentShown.released_to_provider ? "document_disclosed" : "document_withheld");
    }

    for (const kind of ["pin", "password", "document"]) {
      const tries = triesLeft(kind);
      $(`${kind}-tries`).textContent = tries == null ? "" : `${tries}${t("times")}`;
      $(`${kind}-last-try`).hidden = tries !== 1;
      showEntry(kind);
    }

    if (view.step === "result" && previousStep !== "result" && reader.card_present) {
      cardToTake = true;
      renderTakeCard();
    }
    if (view.step === "result" && view.result) {
      const ok = view.result.success;
      $("result-icon").textContent = ok ? "✓" : "✕";
      $("result-icon").className = `result-icon ${ok ? "ok" : "ng"}`;
      $("screen-result").dataset.outcome = view.result.code;
      $("result-title").textContent = localized(view.result, "title");
      $("result-advice").textContent = localized(view.result, "advice");
    }
    // A card-bound presentation: who asks, and which claims the wallet shows (names only).
    const binding = view.step === "key_binding" ? view.key_binding : null;
    $("key-binding-info").hidden = !binding;
    $("title-pin").dataset.i18n = binding ? "key_binding_title" : "pin_title";
    $("title-pin").textContent = t($("title-pin").dataset.i18n);
    if (binding) {
      $("key-binding-verifier").textContent = binding.audience.replace(/^redirect_uri:/, "");
      $("key-binding-claims").textContent = binding.claims.join(", ");
    }
    // The QR code is the service's SVG, shown as an image (an image runs no script).
    const offer = view.step === "result" && view.result ? view.result.wallet_offer : null;
    $("wallet-offer").hidden = !offer;
    if (offer) {
      $("wallet-qr").src = `data:image/svg+xml;base64,${btoa(offer.qr_svg)}`;
      $("wallet-tx-code").textContent = offer.tx_code;
      $("wallet-link").href = offer.offer_uri;
    }

  }

  // Keyboard and screen-reader users land on the new step: its heading takes the
  // focus and is announced (the start screen focuses the code entry instead).
  function stepShown(step) {
    const heading = $(`screen-${screenOf(step)}`).querySelector("h1");
    requestAnimationFrame(() => {
      (step === "start" ? $("code-display") : heading).focus({ preventScroll: true });
      $("announcer").textContent = heading.textContent;
    });
  }

  function renderReader() {
    document.body.classList.toggle("card-present", reader.card_present);
    document.body.classList.toggle("no-reader", !reader.reader);
    let text;
    if (!reader.service_available) text = t("reader_service");
    else if (!reader.reader && reader.chosen_reader) text = `${t("reader_missing")}: ${reader.chosen_reader}`;
    else if (!reader.reader) text = t("reader_none");
    else text = `${reader.reader}: ${t(`reader_card_${reader.card ?? "none"}`)}`;
    $("reader-status").textContent = text;
    $("reader-status").dataset.cardPresent = String(reader.card_present);
    renderTakeCard();
    renderReaderList();
  }

  function renderTakeCard() {
    $("take-card").hidden = !cardToTake;
  }

  // A counter may have several readers (contact, contactless): each is listed with
  // what is in it (the agent asks the card itself, not its ATR), the one in use
  // marked. Staff switch readers by choosing one; only on the start screen, never
  // while a person is between steps. The agent remembers the choice.
  function renderReaderList() {
    const list = $("readers");
    list.setAttribute("aria-label", t("readers"));
    list.replaceChildren();
    const readers = reader.readers ?? [];
    // One reader: the status line says it all.
    list.hidden = readers.length < 2;
    $("reader-status").hidden = !list.hidden;
    $("reader-light").hidden = !list.hidden;
    for (const item of readers) {
      const state = item.card ?? (item.card_present ? "other" : "none");
      const chosen = item.name === reader.reader;
      const entry = document.createElement("li");
      entry.dataset.testid = "reader-item";
      entry.dataset.reader = item.name;
      entry.dataset.card = state;
      const choose = document.createElement("button");
      choose.type = "button";
      choose.className = `reader-item card-${state}${chosen ? " chosen" : ""}`;
      choose.dataset.testid = "reader-choose";
      choose.setAttribute("aria-pressed", String(chosen));
      choose.disabled = view.step !== "start";
      choose.addEventListener("click", () => chooseReader(item.name));
      const light = document.createElement("span");
      light.className = "status-light";
      light.setAttribute("aria-hidden", "true");
      const label = document.createElement("span");
      label.textContent = `${item.name}: ${t(`reader_card_${state}`)}${chosen ? ` (${t("reader_chosen")})` : ""}`;
      choose.append(light, label);
      entry.append(choose);
      list.append(entry);
    }
  }

  async function chooseReader(name) {
    if (name === reader.reader || view.step !== "start") return;
    const response = await fetch("/api/reader", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ name }),
      cache: "no-store",
    });
    const data = await response.json();
    // Refused (a session started meanwhile, the reader unplugged): the list is redrawn as it is.
    reader = response.ok ? data : data.readers ?? reader;
    renderReader();
  }

  // --- inactivity ----------------------------------------------------------------------

  // Cancel, Done and the inactivity timeout all end here: the same clean start
  // (Japanese, no notice, no digits, focus on the code entry) for the next person.
  function resetForNextPerson() {
    clearSecrets();
    clearEntry("code");
    $("last-try-dialog").hidden = true;
    $("idle-dialog").hidden = true;
    pendingSecret = null;
    lang = "ja";
    view = { ...view, notice: null };
    applyLanguage();
    act("/api/session/cancel").then(() => stepShown("start"));
  }

  function touched() {
    lastTouch = Date.now();
    $("idle-dialog").hidden = true;
    if (view.step !== "start" && lastTouch - lastPing > 2000) {
      lastPing = lastTouch;
      fetch("/api/activity", { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" }).catch(() => {});
    }
  }

  function watchIdle() {
    const active = view.step !== "start" || entries.code.length > 0 || lang !== "ja" || Boolean(view.notice);
    if (!active || busy) { $("idle-dialog").hidden = true; return; }
    const left = timeoutSeconds - (Date.now() - lastTouch) / 1000;
    if (left <= 0) { resetForNextPerson(); return; }
    const warnFrom = Math.min(15, timeoutSeconds / 3);
    const dialog = $("idle-dialog");
    const wasHidden = dialog.hidden;
    dialog.hidden = left > warnFrom;
    $("idle-count").textContent = String(Math.ceil(left));
    if (wasHidden && !dialog.hidden) $("idle-continue").focus();
  }

  // --- wiring ----------------------------------------------------------------------------

  function wire() {
    $("lang-toggle").addEventListener("click", () => { lang = lang === "ja" ? "en" : "ja"; applyLanguage(); });
    $("cancel").addEventListener("click", resetForNextPerson);
    $("idle-continue").addEventListener("click", touched);
    $("code-submit").addEventListener("click", () => act("/api/session/lookup", { user_code: entries.code.join("") }));
    $("consent-yes").addEventListener("click", () => act("/api/session/consent", { approved: true }));
    $("consent-no").addEventListener("click", () => act("/api/session/consent", { approved: false }));
    $("card-retry").addEventListener("click", checkCard);
    $("pin-submit").addEventListener("click", () => submitSecret("pin"));
    $("password-submit").addEventListener("click", () => submitSecret("password"));
    $("document-submit").addEventListener("click", () => submitSecret("document"));
    $("document-decline").addEventListener("click", () => { clearEntry("document"); act("/api/session/document/decline"); });
    $("result-done").addEventListener("click", resetForNextPerson);
    $("last-try-back").addEventListener("click", () => { $("last-try-dialog").hidden = true; pendingSecret = null; });
    $("last-try-go").addEventListener("click", () => {
      $("last-try-dialog").hidden = true;
      const kind = pendingSecret;
      pendingSecret = null;
      if (kind) sendSecret(kind, true);
    });
    document.addEventListener("pointerdown", touched, true);
    document.addEventListener("keydown", (event) => {
      touched();
      // A keyboard or a code scanner works too (staff desk).
      const target = { start: "code", pin: "pin", key_binding: "pin", password: "password", document: "document" }[view.step];
      if (!target || busy) return;
      if (event.key === "Backspace") { erase(target); event.preventDefault(); return; }
      if (event.key === "Enter") { $(`${target === "code" ? "code" : target}-submit`).click(); return; }
      const character = event.key.length === 1 ? event.key.toUpperCase() : "";
      if (target === "pin" ? /^[0-9]$/.test(character) : /^[0-9A-Z]$/.test(character)) type(target, character);
    });

    const events = new EventSource("/api/events");
    events.addEventListener("reader", (event) => {
      const wasPresent = reader.card_present;
      reader = JSON.parse(event.data);
      if (!reader.card_present) cardToTake = false;
      renderReader();
      if (view.step === "insert_card" && reader.card_present && !wasPresent) checkCard();
    });
    events.addEventListener("flow", (event) => { if (!busy) render(JSON.parse(event.data)); });
  }

  async function start() {
    try {
      const config = await (await fetch("/api/config", { cache: "no-store" })).json();
      timeoutSeconds = config.inactivity_timeout_seconds;
    } catch (error) { /* keep the default */ }
    wire();
    applyLanguage();
    stepShown(view.step);
    prefillCode();
    setInterval(watchIdle, 250);
    document.body.dataset.ready = "true";
  }

  // Opened from a sign-in page on this computer (OpenID Connect, docs/oidc.md):
  // the code arrives in the address; it is typed in, never sent by itself, and
  // taken out of the address so that a reload starts clean.
  function prefillCode() {
    const code = new URLSearchParams(location.search).get("code") ?? "";
    history.replaceState(null, "", location.pathname);
    if (view.step !== "start" || !/^[0-9A-Za-z]{8}$/.test(code)) return;
    clearEntry("code");
    for (const character of code.toUpperCase()) type("code", character);
  }

  start();
})();
