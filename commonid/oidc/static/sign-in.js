// The person's sign-in page: what the provider asks, the user code for the kiosk, and
// the progress. When the card step ends, the service says where to go back to.
(() => {
  "use strict";
  const id = location.pathname.split("/").pop();
  const claimNames = { name: "氏名 (name)", birthdate: "生年月日 (date of birth)", gender: "性別 (gender)", address: "住所 (address)" };
  const $ = (element) => document.getElementById(element);
  let shown = false;

  function show(view) {
    if (shown) return;
    shown = true;
    $("provider").textContent = view.provider;
    $("purpose").textContent = view.purpose;
    const list = $("claims");
    const items = view.claims.length ? view.claims.map((c) => claimNames[c] ?? c) : ["本人であることの確認のみ (that you are you)"];
    for (const text of items) {
      const item = document.createElement("li");
      item.textContent = text;
      list.append(item);
    }
    $("user-code").textContent = view.user_code;
    $("user-code-qr").src = `/oidc/sign-in/${encodeURIComponent(id)}/qr.svg`;
    $("user-code-qr").hidden = false;
    $("use-this-computer").href = `${view.local_kiosk_url}/?code=${encodeURIComponent(view.user_code)}`;
    $("method").textContent = view.reuse
      ? "利用者証明用暗証番号（数字4桁）だけで確認します。 (PIN only: your earlier verification is reused.)"
      : view.mode === "identity"
        ? "署名用パスワードと利用者証明用暗証番号（数字4桁）が必要です。 (Signature password and PIN.)"
        : "利用者証明用暗証番号（数字4桁）が必要です。 (PIN.)";
  }

  async function poll() {
    let response;
    try {
      response = await fetch(`/oidc/sign-in/${encodeURIComponent(id)}/status`, { cache: "no-store" });
    } catch {
      setTimeout(poll, 3000);
      return;
    }
    if (!response.ok) {
      $("status").textContent = "この確認は見つかりません。最初からやり直してください。 (This sign-in cannot be found: please start again.)";
      $("status").classList.add("error");
      return;
    }
    const view = await response.json();
    show(view);
    if (view.redirect) {
      $("status").textContent = "完了しました。元のサービスに戻ります… (Done: going back…)";
      location.assign(view.redirect);
      return;
    }
    if (view.status === "finished") {
      $("status").textContent = "この確認は終了しています。 (This sign-in has ended.)";
      return;
    }
    setTimeout(poll, 1000);
  }

  poll();
})();
