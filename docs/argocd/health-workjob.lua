-- Argo CD health check for workunits.io/WorkJob (resource.customizations.health.workunits.io_WorkJob).
-- Healthy: Succeeded. Degraded: Failed, or a Stalled condition. Suspended: Cancelled
-- (a person's decision, not a fault), or spec.suspend holding a WorkJob that is not running.
-- Progressing: everything else, including a status the operator has not written yet
-- or one older than the latest spec (observedGeneration behind metadata.generation).
local hs = {}

local function condition(status, kind)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local status = obj.status
if status == nil or status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to pick the WorkJob up"
  return hs
end

local generation = obj.metadata.generation
if generation ~= nil then
  local ready = condition(status, "Ready")
  local stale = status.observedGeneration == nil or status.observedGeneration < generation
  if ready ~= nil and ready.observedGeneration ~= nil and ready.observedGeneration < generation then
    stale = true
  end
  if stale then
    hs.status = "Progressing"
    hs.message = "Waiting for the operator to reconcile generation " .. generation
    return hs
  end
end

local phase = status.phase
local detail = phase
if status.message ~= nil and status.message ~= "" then
  detail = phase .. ": " .. status.message
end
if status.progress ~= nil and status.progress ~= "" then
  detail = detail .. " (" .. status.progress .. " done)"
end
hs.message = detail

local stalled = condition(status, "Stalled")
if phase == "Succeeded" then
  hs.status = "Healthy"
elseif phase == "Failed" then
  hs.status = "Degraded"
elseif phase == "Cancelled" then
  hs.status = "Suspended"
elseif stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  if stalled.message ~= nil and stalled.message ~= "" then
    hs.message = phase .. ": " .. stalled.message
  end
elseif obj.spec ~= nil and obj.spec.suspend == true and phase ~= "Running" then
  hs.status = "Suspended"
else
  -- Pending, Blocked, Running, BackingOff: the WorkJob is on its way.
  hs.status = "Progressing"
end
return hs
