// The DTR questionnaire page (/smart/dtr): each step's QuestionnaireResponse comes from the app
// (POST /smart/dtr/next, session-bound), LHC-Forms draws it with its contained Questionnaire, and
// Continue sends the answers back. Nothing here decides anything; text goes in as text, never as HTML.
(function () {
  "use strict";
  const panel = document.getElementById("dtr");
  if (!panel) return;
  const form = document.getElementById("dtr-form");
  const button = document.getElementById("dtr-continue");
  const message = document.getElementById("dtr-message");
  const status = document.getElementById("dtr-status");
  const determination = document.getElementById("dtr-determination");
  const basis = document.getElementById("dtr-determination-basis");
  const letter = document.getElementById("dtr-letter");
  const restart = document.getElementById("dtr-restart");
  const fromChart = {text: determination.textContent, code: status.dataset.determination, basis: basis.textContent};

  function say(text) {
    message.textContent = text;
    message.hidden = !text;
  }

  // No response: the one the session keeps (a reload resumes it), or a new one; `again`: a new one.
  async function post(questionnaireResponse, again) {
    const response = await fetch(panel.dataset.next, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": panel.dataset.csrf},
      body: JSON.stringify(questionnaireResponse ? {questionnaireResponse: questionnaireResponse}
        : (again ? {restart: true} : {})),
    });
    const body = await response.json().catch(function () { return {error: "The app answered HTTP " + response.status + "."}; });
    if (!response.ok) throw new Error(body.error + (body.hint ? " " + body.hint : ""));
    return body;
  }

  // A copy of the Questionnaire with every item read-only: once completed, nothing typed would count.
  function readOnly(items) {
    return (items || []).map(function (item) {
      return Object.assign({}, item, {readOnly: true}, item.item ? {item: readOnly(item.item)} : {});
    });
  }

  async function show(step) {
    const qr = step.questionnaireResponse;
    const questionnaire = qr.status === "completed"
      ? Object.assign({}, qr.contained[0], {item: readOnly(qr.contained[0].item)}) : qr.contained[0];
    form.replaceChildren();
    // LHC-Forms draws the grown Questionnaire and fills in the response's answers (read-only where the
    // Questionnaire says so: what the chart settles).
    await LForms.Util.addFormToPage(questionnaire, form, {questionnaireResponse: qr});
    panel.dataset.status = qr.status;
    panel.dataset.groups = String(qr.item.length);
    restart.hidden = !step.resumed;
    button.hidden = false;
    letter.hidden = true;
    const shown = step.determination || fromChart;       // before the last step: the chart's own result
    determination.textContent = shown.text;
    status.dataset.determination = shown.code;
    basis.textContent = step.determination ? "(with the answers given)" : fromChart.basis;
    if (qr.status === "completed") {
      button.hidden = true;
      if (step.problems.length) say("The completed questionnaire did not pass its checks, so it is not added to the letter: " + step.problems.join("; ") + ".");
      else letter.hidden = false;
    } else {
      button.disabled = false;
    }
  }

  async function run(questionnaireResponse, again) {
    button.disabled = true;
    say("");
    try {
      await show(await post(questionnaireResponse, again));
    } catch (error) {
      say(error.message || String(error));
      button.disabled = false;
    }
  }

  button.addEventListener("click", function () {
    run(LForms.Util.getFormFHIRData("QuestionnaireResponse", "R4", form));
  });
  restart.addEventListener("click", function () { run(null, true); });
  window.addEventListener("load", function () { run(null); });
})();
