import{a,b,c,d,e,f}from"./chunk-23MTXYC2.js";import"./app-RJNDZQ7V.js";export{f as Overview,d as SummaryCharts,e as Totals,c as WindowPicker,b as summaryPath,a as windows};
